"""The ROUGE-L novelty filter of Self-Instruct and Lion, exact and fast.

Rule: candidate i is kept iff its highest ROUGE-L against the pool and against every candidate kept before
it is <= threshold (0.7 in both papers). Each candidate also gets its nearest item (a pool item or an
earlier kept candidate) with that score, for the review queue.

`similar_pairs` finds, with exact bounds and an inverted index, every candidate-pool and
candidate-candidate pair above min(threshold, nearest_floor); the sequential rule then runs over those
few pairs alone. Decisions and scores equal a brute-force loop over rouge-score.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Literal

import numpy as np

from workers.algorithms.config import AlgorithmConfig, check_int, check_range
from workers.algorithms.similar_pairs import PrefixIndex, TokenizedTexts, pairs_above, tokenize_texts


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoveltyConfig(AlgorithmConfig):
    """threshold: keep iff max ROUGE-L <= threshold (Self-Instruct and Lion: 0.7).

    nearest_floor: the nearest item is exact whenever it scores above min(threshold, nearest_floor); a
    candidate with no such item gets none. Lower costs more (0.0 = always the exact nearest).
    processes: worker processes for the pair search; 0 = one per core when the search would visit at
    least `parallel_work` index entries (about 3 s of work on one core: below that, forking costs more
    than it saves). Without fork, or in a daemonic process such as a Celery prefork child (which may not
    have children), it runs in-process. Results never depend on it.
    chunk: at most this many candidates per batch, which bounds memory.
    """

    threshold: float = 0.7
    nearest_floor: float = 0.5
    processes: int = 0
    parallel_work: int = 20_000_000
    chunk: int = 2000

    def __post_init__(self) -> None:
        check_range(self, "threshold", self.threshold, 0.0, 1.0)
        check_range(self, "nearest_floor", self.nearest_floor, 0.0, 1.0)
        check_int(self, "processes", self.processes, 0)
        check_int(self, "parallel_work", self.parallel_work, 0)
        check_int(self, "chunk", self.chunk, 1)


def _process_count(config: NoveltyConfig, work: Callable[[], int]) -> int:
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    if not can_fork or multiprocessing.current_process().daemon:
        return 1
    if config.processes:
        return config.processes
    cores = os.cpu_count() or 1
    return cores if cores > 1 and work() >= config.parallel_work else 1


@dataclasses.dataclass(frozen=True)
class Nearest:
    """The most similar item: `source` says whether `index` points into the pool or the candidates."""

    source: Literal["pool", "candidate"]
    index: int
    score: float


@dataclasses.dataclass(frozen=True)
class NoveltyDecision:
    kept: bool
    nearest: Nearest | None  # None: nothing scores above min(threshold, nearest_floor)


def _best_by_query(query: np.ndarray, member: np.ndarray, score: np.ndarray) -> dict[int, tuple[int, float]]:
    """Highest score per query; ties go to the lowest member index."""
    order = np.lexsort((member, -score, query))
    query, member, score = query[order], member[order], score[order]
    first = np.ones(query.size, dtype=bool)
    first[1:] = query[1:] != query[:-1]
    return {
        q: (m, s) for q, m, s in zip(query[first].tolist(), member[first].tolist(), score[first].tolist(), strict=True)
    }


_shared: tuple[TokenizedTexts, tuple[PrefixIndex, PrefixIndex]] | None = None


def _share(texts: TokenizedTexts | None, indexes: tuple[PrefixIndex, PrefixIndex] | None) -> None:
    """Hand the texts and indexes to the task runner; forked workers inherit them without pickling."""
    global _shared
    _shared = None if texts is None or indexes is None else (texts, indexes)


def _task(task: tuple[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert _shared is not None
    texts, indexes = _shared
    which, chunk = task
    return pairs_above(texts, indexes[which], chunk)


def novelty_filter(
    candidates: Sequence[str], pool: Sequence[str], config: NoveltyConfig | None = None
) -> list[NoveltyDecision]:
    """Decide each candidate in order, as the sequential rule says, and give its nearest item."""
    config = config or NoveltyConfig()
    if not candidates:
        return []
    t = min(config.threshold, config.nearest_floor)
    if t >= 1.0:  # no score exceeds 1: everything is kept and nothing is near enough to show
        return [NoveltyDecision(kept=True, nearest=None) for _ in candidates]
    texts = tokenize_texts(list(pool) + list(candidates))
    n_pool = len(pool)
    cand_ids = np.arange(n_pool, n_pool + len(candidates), dtype=np.int64)
    indexes = (PrefixIndex(texts, np.arange(n_pool, dtype=np.int64), t), PrefixIndex(texts, cand_ids, t))
    processes = _process_count(config, lambda: indexes[0].work(texts, cand_ids) + indexes[1].work(texts, cand_ids))
    n_chunks = processes * math.ceil(len(candidates) / (processes * config.chunk))
    chunks = np.array_split(cand_ids, n_chunks)
    # Every candidate against the pool, and against the other candidates (the sequential rule below
    # then looks only at earlier ones); each task yields the pairs above t.
    tasks = [(0, chunk) for chunk in chunks] + [(1, chunk) for chunk in chunks]
    if processes > 1:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(processes, context, initializer=_share, initargs=(texts, indexes)) as pool_:
            found = list(pool_.map(_task, tasks))
    else:
        _share(texts, indexes)
        try:
            found = [_task(task) for task in tasks]
        finally:
            _share(None, None)

    pool_best: dict[int, tuple[int, float]] = {}
    for query, member, score in found[: len(chunks)]:
        pool_best.update(_best_by_query(query, member, score))
    earlier: list[list[tuple[float, int]]] = [[] for _ in candidates]
    for query, member, score in found[len(chunks) :]:
        before = member < query
        for q, m, s in zip(query[before].tolist(), member[before].tolist(), score[before].tolist(), strict=True):
            earlier[q - n_pool].append((s, m - n_pool))

    decisions: list[NoveltyDecision] = []
    kept = np.zeros(len(candidates), dtype=bool)
    for i in range(len(candidates)):
        nearest = None
        if (hit := pool_best.get(n_pool + i)) is not None:
            nearest = Nearest("pool", hit[0], hit[1])
        for s, j in sorted(earlier[i], key=lambda pair: (-pair[0], pair[1])):
            if kept[j]:
                if nearest is None or s > nearest.score:
                    nearest = Nearest("candidate", j, s)
                break
        kept[i] = nearest is None or nearest.score <= config.threshold
        decisions.append(NoveltyDecision(kept=bool(kept[i]), nearest=nearest))
    return decisions


def novel_mask(candidates: Sequence[str], pool: Sequence[str], threshold: float = 0.7) -> list[bool]:
    """True for each candidate the novelty filter keeps."""
    config = NoveltyConfig(threshold=threshold, nearest_floor=threshold)
    return [decision.kept for decision in novelty_filter(candidates, pool, config)]


class NoveltyIndex:
    """The novelty rule for a pool that grows: candidates drawn from a fixed universe (a reserve dataset)
    are checked against the pool and against what was kept so far, with every text tokenised once.

    The pool and the universe are tokenised together when the index is built, so element ranks never
    change (any fixed order keeps the prefix bounds exact); the pool's prefix index is built once and the
    universe items added since sit in a small second index, folded into the first when it grows. So
    `novel` decides exactly as `novel_mask(candidates, pool + added)` does, without tokenising again.
    """

    def __init__(self, pool: Sequence[str], universe: Sequence[str], threshold: float = 0.7) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold!r}")
        self.threshold = threshold
        self._offset = len(pool)
        self._size = len(universe)
        self.texts = tokenize_texts(list(pool) + list(universe))
        self._members = np.arange(self._offset, dtype=np.int64)
        self._added: list[int] = []
        self._index = self._build(self._members)
        self._recent: PrefixIndex | None = None

    def _build(self, members: np.ndarray) -> PrefixIndex:
        return PrefixIndex(self.texts, members, self.threshold)

    def _ids(self, items: Sequence[int]) -> np.ndarray:
        ids = np.asarray(items, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self._size):
            raise IndexError(f"universe positions must lie in [0, {self._size})")
        return ids + self._offset

    def add(self, item: int) -> None:
        """Universe item `item` is now part of the pool."""
        self._added.append(int(self._ids([item])[0]))
        self._recent = None
        if len(self._added) > max(64, self._members.size // 8):  # fold in: rebuilding is amortised
            self._members = np.concatenate([self._members, np.asarray(self._added, dtype=np.int64)])
            self._added = []
            self._index = self._build(self._members)

    def novel(self, items: Sequence[int]) -> list[bool]:
        """For universe items in order: kept iff ROUGE-L against the pool, the added items and the items
        kept before it in this call is at most the threshold."""
        ids = self._ids(items)
        if ids.size == 0:
            return []
        if np.unique(ids).size != ids.size:
            raise ValueError("each universe item may be asked about once per call")
        if self.threshold >= 1.0:
            return [True] * ids.size
        if self._added and self._recent is None:
            self._recent = self._build(np.asarray(self._added, dtype=np.int64))
        position = {int(q): k for k, q in enumerate(ids.tolist())}
        near_pool = np.zeros(ids.size, dtype=bool)
        for index in (self._index, self._recent):
            if index is not None:
                query, _, _ = pairs_above(self.texts, index, ids)
                near_pool[[position[q] for q in query.tolist()]] = True
        # Pairs within the call, for the sequential rule (an item's pair with itself is never with an
        # item kept before it).
        near: list[set[int]] = [set() for _ in range(ids.size)]
        query, member, _ = pairs_above(self.texts, self._build(ids), ids)
        for q, m in zip(query.tolist(), member.tolist(), strict=True):
            near[position[q]].add(m)
        kept: set[int] = set()
        out = []
        for k, q in enumerate(ids.tolist()):
            keep = not near_pool[k] and not (near[k] & kept)
            if keep:
                kept.add(q)
            out.append(keep)
        return out
