"""Find every pair of texts whose ROUGE-L exceeds t, without scoring the pairs that cannot.

Almost every pair in a novelty check scores far below the threshold, so the work is in proving that cheaply
and exactly. With m, n the token counts and L the LCS, ROUGE-L is F = 2L/(m+n), so F > t needs
L >= k(m, n) = ceil(t·(m+n)/2), and L is at most:

- min(m, n) (length bound);
- the bag-of-tokens overlap O, counting repeats: the k-th "the" of a text is an element of its own, so O
  is the set overlap of the two texts' elements.

Prefix filtering (AllPairs, PPJoin) turns the overlap bound into an index. Sort every text's elements by
corpus frequency, rarest first. If two texts share k elements, the rarest shared one lies within the first
m - k + 1 elements of one and n - k + 1 of the other. So an inverted index over each text's short, rare
prefix, probed with the other side's prefix, finds every pair that can pass; the common words that make
naive search quadratic ("the", "a", "of") are never probed. Each pair the index yields is then bounded
again, still exactly:

- positional bound: every shared element rarer than the last one seen was seen too, so
  O <= seen + min(elements left after it in either text);
- common-word bitmask: the 128 most frequent elements of the corpus get one bit each, so their overlap is
  an exact popcount, and the rest after the last seen element is bounded by the smaller remainder.

Only the pairs left, a few per cent of those the index yields, reach rapidfuzz's LCS. Bounds are loosened
by 1e-9 in the pair's favour, so float rounding never drops a pair that rouge-score's own arithmetic
(`rouge.f_measure_array`, used on the survivors) would put above t.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import LCSseq

from workers.algorithms.rouge import TokenCodec, f_measure_array, tokenize

_MARGIN = 1e-9
_MASK_WORDS = 2  # 64-bit words of common-element bits per text
_WHOLE_SLICE = 48  # a probe's postings window up to this long is read whole, longer ones cut per length


@dataclasses.dataclass
class TokenizedTexts:
    """Texts in one element space; each text's elements sorted rarest first."""

    codes: np.ndarray  # object array of str, one character per token, for rapidfuzz
    lengths: np.ndarray  # tokens per text
    elements: np.ndarray  # element ranks (0 = rarest), text by text, ascending within a text
    offsets: np.ndarray  # text i's elements are elements[offsets[i]:offsets[i + 1]]
    common_words: list[np.ndarray]  # _MASK_WORDS arrays of 64 bits: which frequent elements a text holds
    common_counts: np.ndarray  # how many of a text's elements are common (they sit at its end)

    @property
    def max_length(self) -> int:
        return int(self.lengths.max()) if self.lengths.size else 0

    def __len__(self) -> int:
        return len(self.codes)


def tokenize_texts(texts: Sequence[str]) -> TokenizedTexts:
    """Tokenise, encode and rank the elements of all texts at once (vectorised after the tokeniser)."""
    codec = TokenCodec()
    codes = [codec.encode(tokenize(text)) for text in texts]
    n_texts = len(codes)
    lengths = np.fromiter(map(len, codes), dtype=np.int32, count=n_texts)
    offsets = np.zeros(n_texts + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    code_array = np.empty(n_texts, dtype=object)
    code_array[:] = codes
    # Every character of the joined codes is a token id (its code point): read them all at once.
    flat = np.frombuffer("".join(codes).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    owner = np.repeat(np.arange(n_texts, dtype=np.int64), lengths)
    # Occurrence number of each token within its text, so repeats become distinct elements.
    order = np.lexsort((flat, owner))
    new_run = np.ones(flat.size, dtype=bool)
    new_run[1:] = (owner[order][1:] != owner[order][:-1]) | (flat[order][1:] != flat[order][:-1])
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(flat.size), 0))
    occurrence = np.empty(flat.size, dtype=np.int64)
    occurrence[order] = np.arange(flat.size) - run_start
    keys = flat + occurrence * (int(flat.max(initial=0)) + 1)
    _, element, frequency = np.unique(keys, return_inverse=True, return_counts=True)
    # Rank elements rarest first (ties by id: any fixed order keeps the prefix argument exact).
    rank = np.empty(frequency.size, dtype=np.int64)
    rank[np.lexsort((np.arange(frequency.size), frequency))] = np.arange(frequency.size)
    ranked = rank[element.reshape(-1)]
    by_text = np.lexsort((ranked, owner))
    ranked = ranked[by_text].astype(np.int32)  # reordered within each text only, so `owner` still applies
    # The most frequent elements have the highest ranks, so they close every text's sorted list.
    first_common = frequency.size - 64 * _MASK_WORDS
    common = ranked >= first_common
    bit = ranked[common] - first_common
    words = []
    for word in range(_MASK_WORDS):
        in_word = bit // 64 == word
        mask = np.zeros(n_texts, dtype=np.uint64)
        np.bitwise_or.at(
            mask, owner[common][in_word], np.left_shift(np.uint64(1), (bit[in_word] % 64).astype(np.uint64))
        )
        words.append(mask)
    counts = np.bincount(owner[common], minlength=n_texts).astype(np.int32)
    return TokenizedTexts(code_array, lengths, ranked, offsets, words, counts)


def _required_overlap(total: np.ndarray, t: float) -> np.ndarray:
    """Smallest LCS that could make F > t for texts of total length m + n, loosened by the margin."""
    return np.maximum(1, np.ceil((t - _MARGIN) * total / 2)).astype(np.int64)


@lru_cache(maxsize=64)
def _overlap_table(max_length: int, t: float) -> np.ndarray:
    """_required_overlap for every m + n up to 2 * max_length."""
    return _required_overlap(np.arange(2 * max_length + 1), t)


@lru_cache(maxsize=4096)
def _prefix_length(m: int, t: float) -> int:
    """How many rarest elements of an m-token text must be indexed or probed so no pair above t is lost."""
    # The shortest partner that the length bound allows needs the least overlap, hence the longest prefix.
    for n in range(1, m + 1):
        k = int(_required_overlap(np.int64(m + n), t))
        if min(m, n) >= k:
            return m - k + 1
    return 0


def _prefix_entries(texts: TokenizedTexts, chosen: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(text, element, position) of every prefix element of the chosen texts."""
    prefix = np.array([_prefix_length(m, t) for m in texts.lengths[chosen].tolist()], dtype=np.int64)
    owner = np.repeat(chosen.astype(np.int32), prefix)
    position = (np.arange(int(prefix.sum())) - np.repeat(np.cumsum(prefix) - prefix, prefix)).astype(np.int32)
    return owner, texts.elements[texts.offsets[owner] + position], position


@lru_cache(maxsize=64)
def _shortest_partner(max_length: int, t: float) -> np.ndarray:
    """For each length m, the shortest n that the length bound min(m, n) >= k(m + n) allows."""
    need = _overlap_table(max_length, t)
    shortest = np.zeros(max_length + 1, dtype=np.int64)
    for m in range(1, max_length + 1):
        n = 1
        while min(m, n) < need[m + n]:
            n += 1
        shortest[m] = n
    return shortest


class PrefixIndex:
    """Inverted index from element to the member texts holding it in their prefix.

    Postings are sorted by (element, member length n, position j), so for each probe and each partner
    length n the members whose element sits within their pair-specific prefix (j <= n - k(m + n)) are one
    contiguous slice, found by binary search: nothing outside the length window or past the prefix is read.
    """

    def __init__(self, texts: TokenizedTexts, members: np.ndarray, t: float) -> None:
        self.t = t
        self.stride = texts.max_length + 1
        owner, element, position = _prefix_entries(texts, members, t)
        key = (element.astype(np.int64) * self.stride + texts.lengths[owner]) * self.stride + position
        order = np.argsort(key, kind="stable")
        self.keys = key[order]
        self.members = owner[order]
        self.positions = position[order]

    def _slices(self, texts: TokenizedTexts, queries: np.ndarray) -> tuple[np.ndarray, ...]:
        """Each probe (query, position i, element) and its slice of postings within the length window."""
        need = _overlap_table(texts.max_length, self.t)
        owner, element, i = _prefix_entries(texts, queries, self.t)
        m = texts.lengths[owner].astype(np.int64)
        # Partner lengths a probe can pair with: long enough for the length bound, and short enough that
        # the probe's element (at position i) still lies within the query's prefix for k(m + n).
        shortest = _shortest_partner(texts.max_length, self.t)[m]
        longest = np.minimum(np.searchsorted(need, m - i, side="right") - 1 - m, texts.max_length)
        base = element.astype(np.int64) * self.stride
        begin = np.searchsorted(self.keys, (base + shortest) * self.stride, side="left")
        stop = np.searchsorted(self.keys, (base + longest + 1) * self.stride, side="left")
        count = np.where(longest >= shortest, stop - begin, 0)
        return owner, i, element, m, shortest, longest, begin, count

    def work(self, texts: TokenizedTexts, queries: np.ndarray) -> int:
        """How many postings lie in the probes' length windows: a cheap measure of the search's cost."""
        return int(self._slices(texts, queries)[-1].sum())

    def _ranges(
        self, texts: TokenizedTexts, queries: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Slices of postings to read: a short window whole, a long one cut per partner length n to the
        members whose element sits within their pair-specific prefix (j <= n - k(m + n))."""
        need = _overlap_table(texts.max_length, self.t)
        owner, i, element, m, shortest, longest, begin, count = self._slices(texts, queries)
        whole = count <= _WHOLE_SLICE
        long = np.flatnonzero(~whole)
        span = longest[long] - shortest[long] + 1
        probe = np.repeat(long, span)
        n = np.repeat(shortest[long], span) + np.arange(int(span.sum())) - np.repeat(np.cumsum(span) - span, span)
        deepest = n - need[m[probe] + n]
        base = (element[probe].astype(np.int64) * self.stride + n) * self.stride
        cut_begin = np.searchsorted(self.keys, base, side="left")
        cut_stop = np.searchsorted(self.keys, base + np.maximum(deepest, 0), side="right")
        cut_count = np.where(deepest >= 0, cut_stop - cut_begin, 0)
        return (
            np.concatenate([owner[whole], owner[probe]]),
            np.concatenate([i[whole], i[probe]]),
            np.concatenate([begin[whole], cut_begin]),
            np.concatenate([count[whole], cut_count]),
        )

    def candidates(self, texts: TokenizedTexts, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (query, member) pairs that every bound above lets through."""
        need = _overlap_table(texts.max_length, self.t)
        owner, i, begin, count = self._ranges(texts, queries)
        at = np.repeat(begin - (np.cumsum(count) - count), count) + np.arange(int(count.sum()))
        query = np.repeat(owner, count)
        i = np.repeat(i, count)
        member = self.members[at]
        j = self.positions[at]
        # The rarest shared element lies within the member's prefix for this pair's k (already true for
        # slices cut per length; whole slices are checked here).
        n = texts.lengths[member]
        keep = j <= n - need[texts.lengths[query] + n]
        query, member, i, j = query[keep], member[keep], i[keep], j[keep]
        if query.size == 0:
            return query, member
        # Group the entries by pair; each pair's entries are now its rarest shared elements, in order.
        key = query.astype(np.int64) * len(texts) + member
        order = np.argsort(key, kind="stable")
        key, query, member, i, j = key[order], query[order], member[order], i[order], j[order]
        head = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        seen = np.diff(np.r_[head, key.size])
        rare_end = texts.lengths[query] - texts.common_counts[query]
        seen_rare = np.add.reduceat((i < rare_end).astype(np.int32), head)
        last_i = np.maximum.reduceat(i, head)
        last_j = np.maximum.reduceat(j, head)
        query, member = query[head], member[head]
        m = texts.lengths[query]
        n = texts.lengths[member]
        k = need[m + n]
        # Positional bound: overlap <= seen + min(elements left after the last seen one).
        passing = seen + np.minimum(m - last_i, n - last_j) - 1 >= k
        query, member, m, n, k = query[passing], member[passing], m[passing], n[passing], k[passing]
        seen_rare, last_i, last_j = seen_rare[passing], last_i[passing], last_j[passing]
        # Common-word bound: overlap <= seen rare elements + shared common elements (exact popcount) +
        # the smaller count of rare elements left after the last seen one.
        common = np.zeros(query.size, dtype=np.int32)
        for word in texts.common_words:
            common += np.bitwise_count(word[query] & word[member])
        rare_left = np.minimum(
            np.maximum(0, m - texts.common_counts[query] - last_i - 1),
            np.maximum(0, n - texts.common_counts[member] - last_j - 1),
        )
        passing = seen_rare + common + rare_left >= k
        return query[passing], member[passing]


def pairs_above(
    texts: TokenizedTexts, index: PrefixIndex, queries: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (query, member, score) with ROUGE-L(query, member) > index.t, scored as rouge-score does."""
    query, member = index.candidates(texts, queries)
    if query.size == 0:
        return query, member, np.zeros(0)
    lcs = process.cpdist(texts.codes[query], texts.codes[member], scorer=LCSseq.similarity, dtype=np.int32)
    score = f_measure_array(lcs, texts.lengths[query], texts.lengths[member])
    above = score > index.t
    return query[above], member[above], score[above]
