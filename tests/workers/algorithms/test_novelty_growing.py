"""The growing novelty index decides as novelty_filter does over the pool as it stands, however the pool
grew (extended items, committed candidates, folds of the small index, re-rankings, longer texts), and as a
rouge-score loop read literally does."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from bench.corpus import real_texts
from workers.algorithms.novelty import GrowingNoveltyIndex, Nearest, NoveltyConfig, NoveltyDecision, novelty_filter


def _near(texts: list[str], rng: random.Random, count: int) -> list[str]:
    """Light edits of existing texts (a dropped word, a swapped one), so some candidates are rejected."""
    out = []
    for _ in range(count):
        words = rng.choice(texts).split()
        out.append(" ".join(w if rng.random() > 0.2 else rng.choice(words) for w in words if rng.random() > 0.1))
    return out


@pytest.fixture(scope="module")
def texts(shared_data) -> list[str]:
    out = real_texts(shared_data)
    random.Random(7).shuffle(out)
    return out


@pytest.mark.parametrize(("threshold", "floor"), [(0.7, 0.5), (0.7, 0.0), (0.5, 0.7), (0.9, 0.3)])
def test_every_call_equals_novelty_filter_over_the_grown_pool(texts, threshold, floor):
    config = NoveltyConfig(threshold=threshold, nearest_floor=floor, chunk=37)
    rng = random.Random(int(threshold * 10 + floor * 100))
    fresh = iter(texts[400:])
    pool = texts[:400]
    index = GrowingNoveltyIndex(pool, config)
    pool = list(pool)
    kept_total = rejected_total = 0
    for step in range(40):
        if step % 3 == 0:  # other items join (the pools stage, or another round's instructions)
            joined = [next(fresh) for _ in range(rng.randint(1, 150))]
            index.extend(joined)
            pool += joined
        candidates = [next(fresh) for _ in range(rng.randint(0, 40))] + _near(pool, rng, rng.randint(0, 40))
        rng.shuffle(candidates)
        if step == 20:  # longer than any text so far: the index's length cap grows
            candidates.append(" ".join(pool[:40]))
        got = index.filter(candidates)
        assert got == novelty_filter(candidates, pool, config), step
        kept = [i for i, d in enumerate(got) if d.kept]
        index.commit(kept)
        pool += [candidates[i] for i in kept]
        kept_total += len(kept)
        rejected_total += len(candidates) - len(kept)
        assert len(index) == len(pool)
    # The run went through folds (the small index passing an eighth of the main one) and re-rankings, and
    # both outcomes occurred often.
    assert len(pool) > 2 * 400 and kept_total > 100 and rejected_total > 100


def test_decisions_and_nearest_equal_a_rouge_score_loop(texts):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

    def score(a: str, b: str) -> float:
        return scorer.score(a, b)["rougeL"].fmeasure

    rng = random.Random(3)
    pool = texts[:150]
    index = GrowingNoveltyIndex(pool)
    pool = list(pool)
    seen_rejected = seen_candidate_nearest = False
    for step in range(3):
        candidates = texts[1000 + 10 * step : 1010 + 10 * step] + _near(pool, rng, 10)
        candidates.append(candidates[0] + " please")  # near a candidate kept earlier in the call
        got = index.filter(candidates)
        kept_here: list[int] = []
        for i, candidate in enumerate(candidates):  # the rule read literally: every pair scored
            best = None
            for source, j, text in [("pool", j, t) for j, t in enumerate(pool)] + [
                ("candidate", j, candidates[j]) for j in kept_here
            ]:
                value = score(candidate, text)
                if best is None or value > best.score:
                    best = Nearest(source, j, value)
            keep = best is None or best.score <= 0.7
            shown = best if best is not None and best.score > 0.5 else None
            assert got[i] == NoveltyDecision(kept=keep, nearest=shown), (step, i)
            if keep:
                kept_here.append(i)
            seen_rejected |= not keep
            seen_candidate_nearest |= shown is not None and shown.source == "candidate"
        index.commit(kept_here)
        pool += [candidates[i] for i in kept_here]
        if step == 1:
            index.extend(texts[2000:2040])
            pool += texts[2000:2040]
    assert seen_rejected and seen_candidate_nearest


def test_an_empty_pool_grows_from_nothing():
    index = GrowingNoveltyIndex()
    assert len(index) == 0 and index.filter([]) == []
    first = index.filter(["write a poem about the sea", "write a poem about the sea today"])
    assert [d.kept for d in first] == [True, False]
    index.commit([0])
    assert [d.kept for d in index.filter(["write a poem about the sea"])] == [False]
    index.extend(["list three prime numbers below ten"])
    [decision] = index.filter(["list three prime numbers below twenty"])
    assert not decision.kept and decision.nearest == Nearest("pool", 1, pytest.approx(5 / 6, abs=1e-15))


def test_commit_belongs_to_the_last_filter_call():
    index = GrowingNoveltyIndex(["alpha beta gamma"])
    with pytest.raises(ValueError, match="follows a filter call"):
        index.commit([0])
    index.filter(["delta epsilon zeta"])
    with pytest.raises(IndexError):
        index.commit([1])
    index.extend(["eta theta"])
    with pytest.raises(ValueError, match="follows a filter call"):
        index.commit([0])
    # Rejected candidates of earlier calls never joined: they reject nothing later.
    assert index.filter(["delta epsilon zeta"])[0].kept


SMALL_TEXT = st.lists(st.sampled_from(["a", "b", "c", "d", "e", "the", "of"]), max_size=9).map(" ".join)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(SMALL_TEXT, max_size=10),
    st.lists(st.tuples(st.booleans(), st.lists(SMALL_TEXT, max_size=8)), max_size=6),
    st.sampled_from([0.0, 0.5, 0.7, 1.0]),
    st.sampled_from([0.0, 0.5, 1.0]),
)
def test_matches_the_filter_on_generated_texts(pool, steps, threshold, floor):
    config = NoveltyConfig(threshold=threshold, nearest_floor=floor)
    index = GrowingNoveltyIndex(pool, config)
    pool = list(pool)
    for is_extend, batch in steps:
        if is_extend:
            index.extend(batch)
            pool += batch
            continue
        got = index.filter(batch)
        assert got == novelty_filter(batch, pool, config)
        kept = [i for i, d in enumerate(got) if d.kept]
        index.commit(kept)
        pool += [batch[i] for i in kept]
