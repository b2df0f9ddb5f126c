"""The novelty filter that generated instructions must pass: Lion keeps a new instruction only if its
ROUGE-L against everything seen (and every instruction kept before it) is at most 0.7. The filter is
injected into the retrieval generator, so its unit tests can use the exact-duplicate one below.

A filter is a callable (candidates, seen) -> keep mask. One that also has `index(seen, universe)` gives
the generator a NoveltyIndex instead: everything seen and the whole reserve tokenised once per run, the
picks added as they are made, the same decisions as the callable.
"""

import re
from collections.abc import Callable, Sequence

from workers.algorithms.novelty import NoveltyIndex, novel_mask

NoveltyFilter = Callable[[Sequence[str], Sequence[str]], list[bool]]
ROUGE_L_THRESHOLD = 0.7


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def exact_duplicate_filter(candidates: Sequence[str], seen: Sequence[str]) -> list[bool]:
    """Keeps a candidate unless its normalised text equals something seen (or an earlier candidate)."""
    known = {normalise(s) for s in seen}
    keep = []
    for candidate in candidates:
        key = normalise(candidate)
        keep.append(key not in known)
        known.add(key)
    return keep


class RougeNoveltyFilter:
    """ROUGE-L <= threshold against everything seen and every candidate kept before."""

    def __init__(self, threshold: float = ROUGE_L_THRESHOLD) -> None:
        self.threshold = threshold

    def __call__(self, candidates: Sequence[str], seen: Sequence[str]) -> list[bool]:
        return novel_mask(list(candidates), list(seen), threshold=self.threshold)

    def index(self, seen: Sequence[str], universe: Sequence[str]) -> NoveltyIndex:
        return NoveltyIndex(seen, universe, self.threshold)


def default_novelty_filter(threshold: float = ROUGE_L_THRESHOLD) -> RougeNoveltyFilter:
    return RougeNoveltyFilter(threshold)
