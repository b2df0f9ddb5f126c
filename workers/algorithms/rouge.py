"""ROUGE-L exactly as rouge-score 0.1.2 computes it (rougeL, no stemmer), on rapidfuzz's LCS.

rouge-score lower-cases a text, turns every run of characters outside [a-z0-9] into a separator and keeps
the remaining runs as tokens; ROUGE-L is then the F-measure of the token-level longest common subsequence
(LCS): P = L/n, R = L/m, F = 2PR/(P+R), which is 2L/(m+n), and 0 when either side has no tokens.

To hand token sequences to rapidfuzz without hashing (which could collide), `TokenCodec` gives each
distinct token its own code point, so a text becomes a short `str` whose characters are its tokens and
rapidfuzz's bit-parallel LCS runs on it in C. `f_measure` repeats rouge-score's float arithmetic step by
step, so scores agree to the last bit, not just to 1e-9.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
from rapidfuzz.distance import LCSseq

_TOKEN_RE = re.compile(r"[a-z0-9]+")

# Code points 0xD800-0xDFFF are surrogates; rapidfuzz would still compare them, but skipping them keeps
# every encoded text a valid Unicode string.
_SURROGATE_START = 0xD800
_SURROGATE_SPAN = 0x800
MAX_TOKENS = 0x110000 - _SURROGATE_SPAN


def tokenize(text: str) -> list[str]:
    """rouge-score's tokens: the runs of [a-z0-9] in the lower-cased text.

    `str.lower` runs first, as in rouge-score, so characters whose lower case is ASCII (the Kelvin sign,
    dotted capital I) become token characters exactly as they do there.
    """
    return _TOKEN_RE.findall(text.lower())


class _CodePoints(dict):
    """token -> one-character str; a new token takes the next free code point (skipping surrogates)."""

    def __missing__(self, token: str) -> str:
        token_id = len(self)
        if token_id >= MAX_TOKENS:
            raise ValueError(f"more than {MAX_TOKENS} distinct tokens: split the work into parts")
        char = chr(token_id if token_id < _SURROGATE_START else token_id + _SURROGATE_SPAN)
        self[token] = char
        return char


class TokenCodec:
    """Maps each distinct token to one code point, so a token sequence becomes a `str` for rapidfuzz.

    Distinct tokens get distinct characters, so the LCS of two encoded texts is the LCS of their tokens.
    """

    def __init__(self) -> None:
        self._chars = _CodePoints()

    def __len__(self) -> int:
        return len(self._chars)

    def encode(self, tokens: Iterable[str]) -> str:
        return "".join(map(self._chars.__getitem__, tokens))


def f_measure(lcs: int, target_len: int, prediction_len: int) -> float:
    """rouge-score's F-measure from an LCS length, with its exact order of float operations."""
    if target_len == 0 or prediction_len == 0:
        return 0.0
    precision = lcs / prediction_len
    recall = lcs / target_len
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def f_measure_array(lcs: np.ndarray, target_len: np.ndarray, prediction_len: np.ndarray) -> np.ndarray:
    """`f_measure` over arrays; numpy's float64 operations round exactly like Python's."""
    lcs = np.asarray(lcs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = lcs / prediction_len
        recall = lcs / target_len
        total = precision + recall
        score = 2 * precision * recall / total
    return np.where((total > 0) & (target_len > 0) & (prediction_len > 0), score, 0.0)


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F-measure of two texts, equal to rouge-score's `RougeScorer(["rougeL"]).score(a, b)`."""
    tokens_a = tokenize(a)
    tokens_b = tokenize(b)
    if not tokens_a or not tokens_b:
        return 0.0
    codec = TokenCodec()
    lcs = LCSseq.similarity(codec.encode(tokens_a), codec.encode(tokens_b))
    return f_measure(lcs, len(tokens_a), len(tokens_b))
