import json
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import process
from rapidfuzz.distance import LCSseq
from rouge_score import rouge_scorer

from workers.algorithms.config import ConfigError
from workers.algorithms.novelty import (
    Nearest,
    NoveltyConfig,
    NoveltyDecision,
    NoveltyIndex,
    novel_mask,
    novelty_filter,
)
from workers.algorithms.rouge import TokenCodec, f_measure, rouge_l, tokenize


def brute_force(candidates, pool, threshold=0.7, floor=0.5, score=rouge_l):
    """The rule read literally: every pair scored, pool first, ties to the earliest item."""
    kept: list[int] = []
    decisions = []
    for candidate in candidates:
        best = None
        others = [("pool", j, text) for j, text in enumerate(pool)]
        others += [("candidate", j, candidates[j]) for j in kept]
        for source, j, text in others:
            value = score(candidate, text)
            if best is None or value > best.score:
                best = Nearest(source, j, value)
        keep = best is None or best.score <= threshold
        if keep:
            kept.append(len(decisions))
        shown = best if best is not None and best.score > min(threshold, floor) else None
        decisions.append(NoveltyDecision(kept=keep, nearest=shown))
    return decisions


def all_pairs_scorer(texts):
    """ROUGE-L of every pair at once (rapidfuzz's cdist, no pruning), for brute force on bigger inputs."""
    codec = TokenCodec()
    codes = [codec.encode(tokenize(text)) for text in texts]
    lcs = process.cdist(codes, codes, scorer=LCSseq.similarity, dtype=np.int32, workers=-1)
    index = {text: i for i, text in enumerate(texts)}

    def score(a, b):
        i, j = index[a], index[b]
        return f_measure(int(lcs[i, j]), len(codes[i]), len(codes[j]))

    return score


def real_texts(shared_data) -> list[str]:
    alpaca = json.loads((shared_data / "LLaMA-Factory_alpaca_en_demo.json").read_text())
    texts = [f"{row['instruction']} {row['input']}".strip() for row in alpaca]
    evals = json.loads((shared_data / "alpaca_eval_results_gpt4_model_outputs.json").read_text())
    texts += [row["instruction"] for row in evals]
    with (shared_data / "distilling_step_by_step" / "cqa" / "cqa_test.json").open() as handle:
        texts += [json.loads(line)["question"] for line in handle]
    return texts


def near_copies(texts, rng, count):
    out = []
    for _ in range(count):
        words = rng.choice(texts).split()
        kept = [w if rng.random() > 0.25 else rng.choice(words) for w in words if rng.random() > 0.1]
        out.append(" ".join(kept))
    return out


def test_matches_brute_force_on_real_instructions(shared_data):
    texts = real_texts(shared_data)
    rng = random.Random(11)
    rng.shuffle(texts)
    pool = texts[:1200]
    candidates = texts[1200:1350] + near_copies(pool, rng, 150)
    rng.shuffle(candidates)
    score = all_pairs_scorer(pool + candidates)
    assert all(score(a, b) == rouge_l(a, b) for a, b in zip(candidates, pool, strict=False))
    for threshold, floor in ((0.7, 0.5), (0.7, 0.0), (0.5, 0.7), (0.9, 0.3)):
        got = novelty_filter(candidates, pool, NoveltyConfig(threshold=threshold, nearest_floor=floor))
        assert got == brute_force(candidates, pool, threshold, floor, score=score)
    kept = [d.kept for d in got]
    assert 0 < sum(kept) < len(kept)


def test_decisions_and_nearest_equal_a_rouge_score_loop(shared_data):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    texts = real_texts(shared_data)
    rng = random.Random(5)
    pool = rng.sample(texts, 300)
    candidates = rng.sample(texts, 20) + near_copies(pool, rng, 20)
    expected = brute_force(candidates, pool, score=lambda a, b: scorer.score(a, b)["rougeL"].fmeasure)
    assert novelty_filter(candidates, pool) == expected
    assert any(not d.kept for d in expected) and any(d.kept for d in expected)


def test_candidate_rejected_by_an_earlier_kept_candidate_names_it():
    pool = ["write a poem about the sea"]
    candidates = ["list three prime numbers below ten", "list three prime numbers below twenty", "hello"]
    decisions = novelty_filter(candidates, pool)
    assert [d.kept for d in decisions] == [True, False, True]
    # "list three prime numbers below" is the LCS: 5 of 6 tokens on both sides, F = 5/6.
    assert decisions[1].nearest == Nearest("candidate", 0, pytest.approx(5 / 6, abs=1e-15))
    assert decisions[0].nearest is None


def test_rejected_candidates_do_not_reject_later_ones():
    pool = ["alpha beta gamma delta"]
    candidates = ["alpha beta gamma delta epsilon", "beta gamma delta epsilon zeta eta"]
    # The first is too close to the pool; the second is close only to the first, which was rejected.
    assert novel_mask(candidates, pool) == [False, True]


def test_threshold_is_inclusive():
    # 7 shared tokens out of 10 + 10: F = 0.7 exactly (as rouge-score rounds it), so the candidate stays.
    pool = ["a b c d e f g h i j"]
    candidate = "a b c d e f g x y z"
    assert rouge_l(candidate, pool[0]) <= 0.7
    assert novel_mask([candidate], pool, threshold=0.7) == [True]
    assert novel_mask([candidate], pool, threshold=0.69) == [False]


def test_empty_inputs():
    assert novelty_filter([], ["a"]) == []
    assert novel_mask(["a b", "", "!!"], []) == [True, True, True]
    assert novel_mask(["a b", "a b"], []) == [True, False]


def test_processes_do_not_change_results(shared_data):
    texts = real_texts(shared_data)
    rng = random.Random(2)
    pool = texts[:800]
    candidates = texts[800:900] + near_copies(pool, rng, 100)
    serial = novelty_filter(candidates, pool, NoveltyConfig(processes=1, chunk=50))
    forked = novelty_filter(candidates, pool, NoveltyConfig(processes=2, chunk=50))
    assert serial == forked


SMALL_TEXT = st.lists(st.sampled_from(["a", "b", "c", "d", "e", "the", "of"]), max_size=9).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(SMALL_TEXT, max_size=12),
    st.lists(SMALL_TEXT, max_size=12),
    st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]),
    st.sampled_from([0.0, 0.5, 1.0]),
)
def test_matches_brute_force_on_generated_texts(candidates, pool, threshold, floor):
    config = NoveltyConfig(threshold=threshold, nearest_floor=floor)
    assert novelty_filter(candidates, pool, config) == brute_force(candidates, pool, threshold, floor)


def test_config_from_dict_rejects_unknown_keys_and_bad_values():
    assert NoveltyConfig.from_dict({"threshold": 0.6}).threshold == 0.6
    with pytest.raises(ConfigError, match=r"unknown key.*'treshold'.*allowed keys are threshold"):
        NoveltyConfig.from_dict({"treshold": 0.6})
    with pytest.raises(ConfigError, match="threshold must be a number in"):
        NoveltyConfig.from_dict({"threshold": 1.5})


def test_the_growing_index_decides_as_the_filter_does_over_the_grown_pool():
    rng = random.Random(3)
    words = [
        "the",
        "sea",
        "a",
        "poem",
        "write",
        "short",
        "night",
        "dawn",
        "list",
        "three",
        "causes",
        "of",
        "french",
        "revolution",
        "explain",
        "gears",
    ]
    universe = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 9))) for _ in range(400)]
    pool = universe[:5]
    index, added = NoveltyIndex(pool, universe), []
    for _ in range(120):  # past the point where the additions are folded into the main index
        block = rng.sample(range(len(universe)), 12)
        decided = index.novel(block)
        assert decided == novel_mask([universe[i] for i in block], pool + [universe[i] for i in added])
        if True in decided:
            pick = block[decided.index(True)]
            index.add(pick)
            added.append(pick)
    assert len(added) > 65
    with pytest.raises(ValueError, match="once per call"):
        index.novel([1, 1])
    with pytest.raises(IndexError):
        index.add(len(universe))
