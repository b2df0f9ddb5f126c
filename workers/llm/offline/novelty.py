"""The novelty filter that generated instructions must pass: Lion keeps a new instruction only if its
ROUGE-L against everything seen (and every instruction kept before it) is at most 0.7. The filter is
injected into the retrieval generator, so its unit tests can use the exact-duplicate one below.
"""

import re
from collections.abc import Callable, Sequence

from workers.algorithms.novelty import novel_mask

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


def default_novelty_filter(threshold: float = ROUGE_L_THRESHOLD) -> NoveltyFilter:
    def rouge_filter(candidates: Sequence[str], seen: Sequence[str]) -> list[bool]:
        return novel_mask(list(candidates), list(seen), threshold=threshold)

    return rouge_filter
