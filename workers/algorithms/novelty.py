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
from workers.algorithms.rouge import TokenCodec, tokenize
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


# --- a pool that grows: tokens, element ranks and postings kept --------------------------------------------
_KEY_BASE = 0x110000  # above every code point: an element is (token code point, occurrence in its text)
_COMMON = 64 * 2  # elements with a bit in the common-word mask (similar_pairs' _MASK_WORDS words of 64)


def _element_keys(codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(key of each token's element, owning text, tokens per text); the k-th repeat of a token is an
    element of its own, as in similar_pairs.tokenize_texts."""
    n = len(codes)
    lengths = np.fromiter(map(len, codes), dtype=np.int32, count=n)
    flat = np.frombuffer("".join(codes).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    owner = np.repeat(np.arange(n, dtype=np.int64), lengths)
    order = np.lexsort((flat, owner))
    new_run = np.ones(flat.size, dtype=bool)
    new_run[1:] = (owner[order][1:] != owner[order][:-1]) | (flat[order][1:] != flat[order][:-1])
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(flat.size), 0))
    occurrence = np.empty(flat.size, dtype=np.int64)
    occurrence[order] = np.arange(flat.size) - run_start
    return flat + occurrence * _KEY_BASE, owner, lengths


class _Buffer:
    """A numpy array that grows by doubling, so appending costs what is appended (amortised)."""

    def __init__(self, dtype) -> None:
        self.data = np.zeros(64, dtype=dtype)
        self.size = 0

    def append(self, values: np.ndarray) -> None:
        need = self.size + len(values)
        if need > self.data.size:
            grown = np.zeros(max(need, 2 * self.data.size), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : need] = values
        self.size = need

    def view(self) -> np.ndarray:
        return self.data[: self.size]


@dataclasses.dataclass
class _GrownTexts(TokenizedTexts):
    """TokenizedTexts over growing buffers. `max_length` is a fixed cap (not the longest text), so the
    prefix indexes' key layout stays valid while texts are appended; it only grows by rebuilding them."""

    length_cap: int = 0

    @property
    def max_length(self) -> int:
        return self.length_cap


class _TextStore:
    """Every text tokenised once, with element ranks that never change between re-rankings.

    Prefix filtering is exact for any fixed order of the elements; rarest-first only makes it fast. Ranks
    come from the frequencies of the texts present at the last ranking; an element first seen later is
    rarer than all of them (a negative rank) and never common, so the common-word mask (the highest ranks)
    still closes every text's sorted list. `rerank` recomputes the order from the kept codes, without
    tokenising again.
    """

    def __init__(self) -> None:
        self.codec = TokenCodec()
        self.codes: list[str] = []
        self.length_cap = 64
        self._reset([])

    def _reset(self, codes: list[str]) -> None:
        keys, owner, lengths = _element_keys(codes)
        known, element, frequency = np.unique(keys, return_inverse=True, return_counts=True)
        rank = np.empty(frequency.size, dtype=np.int64)
        rank[np.lexsort((np.arange(frequency.size), frequency))] = np.arange(frequency.size)
        self._known, self._known_rank = known, rank
        self._first_common = frequency.size - _COMMON
        self._new: dict[int, int] = {}  # elements first seen after the ranking -> rank (negative)
        self.ranked_size = len(codes)
        self._lengths, self._offsets, self._elements = _Buffer(np.int32), _Buffer(np.int64), _Buffer(np.int32)
        self._words = [_Buffer(np.uint64) for _ in range(_COMMON // 64)]
        self._counts, self._codes = _Buffer(np.int32), _Buffer(object)
        self._offsets.append(np.zeros(1, dtype=np.int64))
        self._lay_out(codes, rank[element.reshape(-1)], owner, lengths)

    def rerank(self) -> None:
        self._reset(self.codes)

    def _ranks(self, keys: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(self._known, keys), max(self._known.size - 1, 0))
        found = self._known[at] == keys if self._known.size else np.zeros(keys.size, dtype=bool)
        ranks = np.where(found, self._known_rank[at] if self._known.size else 0, 0)
        unknown = np.flatnonzero(~found)
        if unknown.size:
            unseen = keys[unknown][[key not in self._new for key in keys[unknown].tolist()]]
            fresh, counts = np.unique(unseen, return_counts=True)
            lowest = min(self._new.values(), default=0)
            # Rarer first: the new elements seen least often get the lowest ranks.
            for n, key in enumerate(fresh[np.lexsort((fresh, -counts))].tolist()):
                self._new[key] = lowest - 1 - n
            ranks[unknown] = [self._new[k] for k in keys[unknown].tolist()]
        return ranks

    def _lay_out(self, codes: list[str], ranked: np.ndarray, owner: np.ndarray, lengths: np.ndarray) -> None:
        n = len(codes)
        by_text = np.lexsort((ranked, owner))
        ranked = ranked[by_text].astype(np.int32)  # reordered within each text only
        common = ranked >= self._first_common
        bit = (ranked[common] - self._first_common).astype(np.int64)
        for word, buffer in enumerate(self._words):
            in_word = bit // 64 == word
            mask = np.zeros(n, dtype=np.uint64)
            np.bitwise_or.at(
                mask, owner[common][in_word], np.left_shift(np.uint64(1), (bit[in_word] % 64).astype(np.uint64))
            )
            buffer.append(mask)
        self._counts.append(np.bincount(owner[common], minlength=n).astype(np.int32))
        self._offsets.append(self._offsets.view()[-1] + np.cumsum(lengths, dtype=np.int64))
        self._lengths.append(lengths)
        self._elements.append(ranked)
        code_array = np.empty(n, dtype=object)
        code_array[:] = codes
        self._codes.append(code_array)
        longest = int(lengths.max(initial=0))
        while longest >= self.length_cap:
            self.length_cap *= 2

    def add(self, texts: Sequence[str]) -> range:
        """Tokenise and append; returns the new texts' ids."""
        codes = [self.codec.encode(tokenize(text)) for text in texts]
        start = len(self.codes)
        self.codes += codes
        keys, owner, lengths = _element_keys(codes)
        self._lay_out(codes, self._ranks(keys), owner, lengths)
        return range(start, len(self.codes))

    def view(self) -> _GrownTexts:
        return _GrownTexts(
            self._codes.view(),
            self._lengths.view(),
            self._elements.view(),
            self._offsets.view(),
            [word.view() for word in self._words],
            self._counts.view(),
            length_cap=self.length_cap,
        )


class GrowingNoveltyIndex:
    """`novelty_filter` against a pool that grows, with every text tokenised once.

    `filter(candidates)` decides exactly as `novelty_filter(candidates, pool)` over the pool as it stands
    (decisions, nearest items, scores, ties); `commit(kept)` lets that call's kept candidates join the pool
    without tokenising them again, and `extend(texts)` adds other items as they join. The pool's prefix
    index is built once; items added since sit in a small second index, folded into the first when it
    passes an eighth of it (with the element order re-ranked once the pool has doubled), so a call costs
    its own candidates' probes and tokens, not a pass over the pool. Pool positions are join order. The
    pair search runs in this process (`processes` is not used here; `chunk` bounds the probes per step).
    """

    def __init__(self, pool: Sequence[str] = (), config: NoveltyConfig | None = None) -> None:
        self.config = config or NoveltyConfig()
        self.t = min(self.config.threshold, self.config.nearest_floor)
        self._store = _TextStore()
        self._pool: list[int] = []  # store ids in pool order
        self._position: dict[int, int] = {}  # store id -> pool position
        self._main = np.zeros(0, dtype=np.int64)  # members of the main index
        self._recent: list[int] = []  # members added since, in the small index
        self._main_index: PrefixIndex | None = None
        self._recent_index: PrefixIndex | None = None
        self._built = False  # main index built for self._main at self._cap
        self._cap = 0
        self._staged: range | None = None
        self.extend(pool)

    def __len__(self) -> int:
        return len(self._pool)

    def _join(self, ids: Sequence[int]) -> None:
        for store_id in ids:
            self._position[store_id] = len(self._pool)
            self._pool.append(store_id)
        self._recent.extend(ids)
        self._recent_index = None

    def extend(self, texts: Sequence[str]) -> None:
        """These items join the pool, in order."""
        self._staged = None
        if texts:
            self._join(self._store.add(texts))

    def _ready(self) -> tuple[_GrownTexts, list[PrefixIndex]]:
        store = self._store
        if not self._built or len(self._recent) > max(64, self._main.size // 8) or store.length_cap != self._cap:
            if len(store.codes) >= 2 * max(store.ranked_size, 32):
                store.rerank()  # a better element order for the bigger pool; decisions never depend on it
            self._main, self._recent = np.asarray(self._pool, dtype=np.int64), []
            self._main_index = PrefixIndex(store.view(), self._main, self.t) if self._main.size else None
            self._recent_index, self._built, self._cap = None, True, store.length_cap
        texts = store.view()
        if self._recent and self._recent_index is None:
            self._recent_index = PrefixIndex(texts, np.asarray(self._recent, dtype=np.int64), self.t)
        return texts, [index for index in (self._main_index, self._recent_index) if index is not None]

    def filter(self, candidates: Sequence[str]) -> list[NoveltyDecision]:
        """Each candidate in order against the pool and the candidates kept before it in this call."""
        ids = self._store.add(candidates) if candidates else range(0)
        self._staged = ids
        if not candidates:
            return []
        if self.t >= 1.0:
            return [NoveltyDecision(kept=True, nearest=None) for _ in candidates]
        texts, indexes = self._ready()
        cand_ids = np.arange(ids.start, ids.stop, dtype=np.int64)
        chunks = np.array_split(cand_ids, math.ceil(cand_ids.size / self.config.chunk))
        found = [pairs_above(texts, index, chunk) for index in indexes for chunk in chunks]
        pool_best: dict[int, tuple[int, float]] = {}
        if found:
            pool_best = _best_by_query(*(np.concatenate(parts) for parts in zip(*found, strict=True)))
        own = PrefixIndex(texts, cand_ids, self.t)
        earlier: list[list[tuple[float, int]]] = [[] for _ in candidates]
        for chunk in chunks:
            query, member, score = pairs_above(texts, own, chunk)
            before = member < query
            for q, m, s in zip(query[before].tolist(), member[before].tolist(), score[before].tolist(), strict=True):
                earlier[q - ids.start].append((s, m - ids.start))
        decisions: list[NoveltyDecision] = []
        kept = np.zeros(len(candidates), dtype=bool)
        for i in range(len(candidates)):
            nearest = None
            if (hit := pool_best.get(ids.start + i)) is not None:
                nearest = Nearest("pool", self._position[hit[0]], hit[1])
            for s, j in sorted(earlier[i], key=lambda pair: (-pair[0], pair[1])):
                if kept[j]:
                    if nearest is None or s > nearest.score:
                        nearest = Nearest("candidate", j, s)
                    break
            kept[i] = nearest is None or nearest.score <= self.config.threshold
            decisions.append(NoveltyDecision(kept=bool(kept[i]), nearest=nearest))
        return decisions

    def commit(self, kept: Sequence[int]) -> None:
        """The last `filter` call's candidates at these positions join the pool (in ascending order)."""
        if self._staged is None:
            raise ValueError("commit follows a filter call, before any other change to the index")
        positions = sorted(set(int(k) for k in kept))
        if positions and not (positions[0] >= 0 and positions[-1] < len(self._staged)):
            raise IndexError(f"candidate positions must lie in [0, {len(self._staged)})")
        self._join([self._staged[k] for k in positions])
        self._staged = None
