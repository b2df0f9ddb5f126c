"""The seam for the novelty filter that generated instructions must pass (Lion keeps a new instruction
only if its ROUGE-L against everything seen is at most 0.7).

The filter itself belongs to workers.algorithms.novelty (`novel_mask(candidates, seen, threshold=…)`,
one bool per candidate). Until that module exists on this branch, an exact-duplicate filter stands in
and says so in the log, so nothing pretends to run a check it does not.
"""

import importlib
import logging
import re
from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

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
    try:
        module = importlib.import_module("workers.algorithms.novelty")
    except ImportError:
        log.warning("workers.algorithms.novelty is not available: generated instructions are checked for "
                    "exact duplicates only, not for ROUGE-L similarity.")
        return exact_duplicate_filter

    def rouge_filter(candidates: Sequence[str], seen: Sequence[str]) -> list[bool]:
        return [bool(flag) for flag in module.novel_mask(list(candidates), list(seen), threshold=threshold)]

    return rouge_filter
