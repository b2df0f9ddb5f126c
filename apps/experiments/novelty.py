"""The novelty filter of a generate stage, kept across its batches.

A candidate is kept iff its ROUGE-L against the pool (the cache pool plus everything the experiment
generated), the candidates kept in earlier batches and those kept before it in its own batch is at most
the threshold, as `workers.algorithms.novelty.novelty_filter` decides; each decision also carries the
nearest item above min(threshold, nearest_floor), for lineage and the review queue.

The pool and all of the stage's candidates (known once the generator's calls have settled) are
tokenised together once, so element ranks never change; the pool's prefix index is built once and kept
candidates sit in a small second index, folded in as it grows. A batch then costs what its own probes
cost, not a new pass over the pool. The index lives in the worker process, keyed by the stage run and its
cursor; after a restart (or any mismatch) it is rebuilt from the database, where the candidates kept so
far are instructions of the pool, which decides the same.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workers.algorithms.similar_pairs import PrefixIndex, pairs_above, tokenize_texts


@dataclass(frozen=True)
class Decision:
    kept: bool
    nearest_source: str | None = None  # "pool" | "candidate"
    nearest_index: int | None = None  # into the pool, or a candidate position
    score: float | None = None


class KeptNovelty:
    def __init__(self, pool: Sequence[str], candidates: Sequence[str], threshold: float = 0.7, floor: float = 0.5):
        self.threshold = float(threshold)
        self.t = min(self.threshold, float(floor))
        self.n_pool = len(pool)
        self.n_candidates = len(candidates)
        self.texts = tokenize_texts(list(pool) + list(candidates))
        self._members = np.arange(self.n_pool, dtype=np.int64)
        self._index = self._build(self._members)
        self._added: list[int] = []
        self._recent: PrefixIndex | None = None

    def _build(self, members: np.ndarray) -> PrefixIndex | None:
        return PrefixIndex(self.texts, members, self.t) if members.size else None

    def _pairs(self, index: PrefixIndex | None, ids: np.ndarray):
        if index is None or self.t >= 1.0:
            return []
        query, member, score = pairs_above(self.texts, index, ids)
        return zip(query.tolist(), member.tolist(), score.tolist(), strict=True)

    def decide(self, positions: Sequence[int]) -> list[Decision]:
        """Candidates by position (ascending), decided in order; call `add` with the kept ones after."""
        ids = np.asarray(positions, dtype=np.int64) + self.n_pool
        if ids.size == 0:
            return []
        if self._added and self._recent is None:
            self._recent = self._build(np.asarray(self._added, dtype=np.int64))
        best: dict[int, tuple[float, int, int]] = {}  # query -> (score, 0 pool / 1 candidate, member)

        def offer(q: int, m: int, s: float) -> None:
            key = (-s, int(m >= self.n_pool), m)  # highest score; ties: the pool, then the lowest index
            current = best.get(q)
            if current is None or key < (-current[0], current[1], current[2]):
                best[q] = (s, int(m >= self.n_pool), m)

        for index in (self._index, self._recent):
            for q, m, s in self._pairs(index, ids):
                offer(q, m, s)
        earlier: dict[int, list[tuple[float, int]]] = {}
        for q, m, s in self._pairs(self._build(ids), ids):
            if m < q:
                earlier.setdefault(q, []).append((s, m))
        kept: set[int] = set()
        out = []
        for q in ids.tolist():
            near = best.get(q)
            for s, m in sorted(earlier.get(q, ()), key=lambda pair: (-pair[0], pair[1])):
                if m in kept:
                    if near is None or s > near[0]:
                        near = (s, 1, m)
                    break
            keep = near is None or near[0] <= self.threshold
            if keep:
                kept.add(q)
            if near is None:
                out.append(Decision(keep))
            else:
                source = "pool" if near[2] < self.n_pool else "candidate"
                index = near[2] if source == "pool" else near[2] - self.n_pool
                out.append(Decision(keep, source, index, float(near[0])))
        return out

    def add(self, positions: Sequence[int]) -> None:
        """These candidates were kept: later ones are checked against them too."""
        self._added.extend(int(p) + self.n_pool for p in positions)
        self._recent = None
        if len(self._added) > max(64, self._members.size // 8):  # fold in: rebuilding is amortised
            self._members = np.concatenate([self._members, np.asarray(self._added, dtype=np.int64)])
            self._added = []
            self._index = self._build(self._members)


# The generate stage's kept filters in this worker process: {stage run id: (cursor, filter, extra)}.
_KEPT: dict[int, tuple[int, KeptNovelty, dict]] = {}


def kept_get(run_id: int, cursor: int):
    entry = _KEPT.get(run_id)
    return entry[1:] if entry is not None and entry[0] == cursor else None


def kept_put(run_id: int, cursor: int, novelty: KeptNovelty, extra: dict) -> None:
    if len(_KEPT) > 8:
        _KEPT.clear()
    _KEPT[run_id] = (cursor, novelty, extra)
