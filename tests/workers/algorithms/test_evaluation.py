"""Evaluation maths: two-order outcomes, bootstrap intervals, per-category rates, length control, accuracy
and regression alerts."""

import json
import math

import numpy as np
import pytest

from workers.algorithms.evaluation import (
    LOSS,
    TIE,
    WIN,
    RateResult,
    accuracy,
    bootstrap_ci,
    category_regressions,
    judge_outcome,
    judge_outcomes,
    length_controlled_win_rate,
    per_category,
    rate_result,
    win_rate,
    win_rate_report,
)
from workers.algorithms.step_by_step import build_examples, evaluate, parse_rationale
from workers.algorithms.step_by_step.examples import gold_example, teacher_label


# --- outcomes and win rate ---------------------------------------------------------------------------------
def test_outcome_averages_each_answer_over_both_orders_then_compares():
    # teacher-first (t1, s1), student-first (s2, t2)
    assert judge_outcome((8, 6), (6, 8)) == LOSS  # teacher 8, student 6
    assert judge_outcome((6, 8), (8, 6)) == WIN
    assert judge_outcome((7, 7), (7, 7)) == TIE
    # Each order prefers the answer shown first by 2: a pure position bias, averaged away into a tie.
    assert judge_outcome((8, 6), (8, 6)) == TIE
    # Orders disagree, but the averages do not: teacher (9 + 5)/2 = 7, student (6 + 7)/2 = 6.5.
    assert judge_outcome((9, 6), (7, 5)) == LOSS
    assert judge_outcome((7, 7.5), (7, 7)) == WIN  # student 7.25 > teacher 7
    assert judge_outcome((7, 7.5), (7, 7), tie_margin=0.25) == TIE


def test_an_item_invalid_in_either_order_is_excluded_not_lost():
    assert judge_outcome(None, (6, 8)) is None
    assert judge_outcome((6, 8), None) is None
    assert judge_outcome((float("nan"), 8), (6, 8)) is None
    outcomes = judge_outcomes([((6, 8), (8, 6)), (None, (1, 2)), ((8, 6), (6, 8)), ((5, 5), (5, 5))])
    assert outcomes == [WIN, None, LOSS, TIE]
    assert win_rate(outcomes) == pytest.approx(0.5)  # (1 + 0 + 0.5) / 3
    result = rate_result(outcomes, seed=3)
    assert (result.n, result.invalid, result.rate) == (3, 1, pytest.approx(0.5))
    assert win_rate([None, None]) is None and win_rate([]) is None
    assert rate_result([None]) == RateResult(n=0, rate=None, ci_low=None, ci_high=None, invalid=1)


def test_win_rate_report_counts_and_json():
    pairs = [((6, 8), (8, 6)), ((8, 6), (6, 8)), ((5, 5), (5, 5)), (None, (1, 2))]
    report = win_rate_report(pairs, ["Math", "Math", "Writing", "Writing"], [10, -10, 0, 5], seed=1)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["counts"] == {"win": 1, "tie": 1, "loss": 1, "invalid": 1}
    assert data["overall"]["n"] == 3 and data["overall"]["rate"] == pytest.approx(0.5)
    assert data["by_category"]["Math"]["n"] == 2 and data["by_category"]["Writing"]["invalid"] == 1
    assert data["length_controlled"]["n"] == 3


# --- bootstrap ---------------------------------------------------------------------------------------------
def test_bootstrap_hand_computed_cases():
    assert bootstrap_ci([0.5] * 7, seed=1) == (0.5, 0.5)
    assert bootstrap_ci([]) is None and bootstrap_ci([None]) is None
    # Two values 0 and 1: resample means are 0, 0.5, 1 with chances 1/4, 1/2, 1/4, so the 95% percentile
    # interval runs from 0 to 1.
    assert bootstrap_ci([0.0, 1.0], n_resamples=4000, seed=2) == (0.0, 1.0)
    # ... and the 40% interval (quantiles 0.3 and 0.7) sits on the middle value.
    assert bootstrap_ci([0.0, 1.0], n_resamples=4000, seed=2, level=0.4) == (0.5, 0.5)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0], level=1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, float("inf")])


def test_bootstrap_matches_resampling_indices():
    """Drawing counts of the distinct values is the same distribution as drawing n indices."""
    rng = np.random.default_rng(11)
    values = rng.choice([0.0, 0.5, 1.0], p=[0.5, 0.2, 0.3], size=60)
    ours = bootstrap_ci(values, n_resamples=40_000, seed=5)
    means = values[rng.integers(0, values.size, size=(40_000, values.size))].mean(axis=1)
    naive = np.quantile(means, [0.025, 0.975])
    assert ours == pytest.approx(tuple(naive), abs=0.012)


def test_bootstrap_interval_covers_the_true_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(2024)
    probabilities = [0.35, 0.15, 0.5]  # win, tie, loss: true rate 0.35 + 0.15 / 2 = 0.425
    true_rate = probabilities[0] + probabilities[1] / 2
    runs, covered = 400, 0
    for run in range(runs):
        outcomes = rng.choice([WIN, TIE, LOSS], p=probabilities, size=120)
        low, high = bootstrap_ci(outcomes, n_resamples=2000, seed=run)
        covered += low <= true_rate <= high
    # 400 runs at 95%: the binomial sd is 1.1 points, so 0.92-0.975 holds unless the interval is wrong
    # (a 90% interval would cover about 0.90, a 99% one about 0.99).
    assert 0.92 <= covered / runs <= 0.975, covered / runs


def test_bootstrap_is_seeded_and_deterministic():
    values = [1, 0, 0.5, 1, 1, 0, 0, 1, 0.5, 1] * 4
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(np.array(values, dtype=float), seed=7)


# --- per category ------------------------------------------------------------------------------------------
def test_per_category_counts_rates_and_independent_streams():
    outcomes = [WIN, LOSS, TIE, None, WIN, WIN, LOSS]
    categories = ["Math", "Math", "Math", "Math", "Writing", "Writing", "Roleplay"]
    results = per_category(outcomes, categories, seed=4)
    assert list(results) == ["Math", "Roleplay", "Writing"]
    math_result = results["Math"]
    assert (math_result.n, math_result.invalid, math_result.rate) == (3, 1, pytest.approx(0.5))
    assert results["Writing"].rate == 1.0 and (results["Writing"].ci_low, results["Writing"].ci_high) == (1.0, 1.0)
    assert results["Roleplay"].rate == 0.0
    assert 0.0 <= math_result.ci_low <= 0.5 <= math_result.ci_high <= 1.0
    # Adding a category leaves the others' intervals as they were.
    more = per_category([*outcomes, LOSS, WIN], [*categories, "Code Generation", "Code Generation"], seed=4)
    assert more["Math"] == results["Math"] and more["Writing"] == results["Writing"]
    with pytest.raises(ValueError):
        per_category([WIN], [])


# --- length control ----------------------------------------------------------------------------------------
def _simulated_judgements(seed: int, verbosity: float, length_bias: float, n: int = 3000):
    """Judge scores in both orders for n items. Quality decides the true winner; the judge adds
    `length_bias` * tanh(standardised length difference) in favour of the longer answer and a position
    bonus for the answer shown first; scores are rounded to halves (so ties happen). The student's answers
    are exp(verbosity) times as long as the teacher's on average."""
    rng = np.random.default_rng(seed)
    student_q, teacher_q = rng.normal(0.0, 1.0, n), rng.normal(0.5, 1.0, n)
    teacher_len = np.exp(rng.normal(6.0, 0.5, n))
    student_len = teacher_len * np.exp(rng.normal(verbosity, 0.5, n))
    diffs = student_len - teacher_len
    noise = rng.normal(0.0, 0.7, (4, n))
    shift = length_bias * np.tanh(diffs / diffs.std()) / 2

    def score(quality, first, k):
        return np.round((5 + quality + 0.3 * first + noise[k]) * 2) / 2

    t1, s1 = score(teacher_q - shift, 1, 0), score(student_q + shift, 0, 1)
    s2, t2 = score(student_q + shift, 1, 2), score(teacher_q - shift, 0, 3)
    pairs = [((a, b), (c, d)) for a, b, c, d in zip(t1, s1, s2, t2, strict=True)]
    return pairs, diffs


@pytest.mark.parametrize(("seed", "verbosity"), [(1, 0.5), (2, 0.5), (3, -0.5), (4, -0.5)])
def test_length_control_removes_a_pure_length_effect(seed, verbosity):
    unbiased, diffs = _simulated_judgements(seed, verbosity, length_bias=0.0)
    biased, _ = _simulated_judgements(seed, verbosity, length_bias=1.5)
    true_rate = win_rate(judge_outcomes(unbiased))  # the same items judged without a length preference
    result = length_controlled_win_rate(judge_outcomes(biased), diffs)
    # A verbose student gains about 15 points from the judge's taste, a terse one loses about as much ...
    assert abs(result.raw_win_rate - true_rate) > 0.1
    assert (result.raw_win_rate > true_rate) == (verbosity > 0)
    # ... and the length-controlled rate stays within 3 points of the truth.
    assert abs(result.win_rate - true_rate) < 0.03, (true_rate, result)
    assert result.length_coef > 0.5


def test_length_control_without_a_length_effect_stays_at_the_raw_rate():
    unbiased, diffs = _simulated_judgements(5, 0.3, length_bias=0.0)
    result = length_controlled_win_rate(judge_outcomes(unbiased), diffs)
    assert abs(result.win_rate - result.raw_win_rate) < 0.02 and abs(result.length_coef) < 0.2


def test_length_control_hand_computed_cases():
    # No length information and no penalty: the fit is sigmoid(b0) = mean outcome exactly.
    outcomes = [WIN, LOSS, LOSS, TIE, WIN, LOSS]
    flat = length_controlled_win_rate(outcomes, [3.0] * 6, l2=0.0)
    assert flat.scale == 0.0 and flat.length_coef == 0.0
    assert flat.win_rate == pytest.approx(win_rate(outcomes), abs=1e-9)
    # The fitted coefficients are the penalised optimum: the gradient vanishes there.
    diffs = [-40.0, 10.0, 25.0, -5.0, 60.0, -30.0, 15.0, 0.0]
    values = [LOSS, WIN, WIN, TIE, WIN, LOSS, LOSS, WIN]
    fit = length_controlled_win_rate(values, diffs, l2=0.01)
    x = np.column_stack([np.ones(8), np.tanh(np.array(diffs) / np.std(diffs))])
    p = 1 / (1 + np.exp(-(x @ [fit.intercept, fit.length_coef])))
    gradient = x.T @ (np.array(values) - p) - 0.01 * np.array([fit.intercept, fit.length_coef])
    assert np.abs(gradient).max() < 1e-8
    assert fit.win_rate == pytest.approx(1 / (1 + math.exp(-fit.intercept)))
    # Every outcome the same: finite (the L2 term), near 1, and invalid items are skipped.
    wins = length_controlled_win_rate([WIN] * 20 + [None], list(range(21)))
    assert wins.n == 20 and 0.95 < wins.win_rate < 1.0 and math.isfinite(wins.intercept)
    empty = length_controlled_win_rate([None], [1.0])
    assert empty.win_rate is None and empty.n == 0
    with pytest.raises(ValueError):
        length_controlled_win_rate([WIN], [1.0, 2.0])


def test_length_control_is_deterministic():
    pairs, diffs = _simulated_judgements(9, 0.4, length_bias=1.0, n=500)
    outcomes = judge_outcomes(pairs)
    assert length_controlled_win_rate(outcomes, diffs) == length_controlled_win_rate(outcomes, diffs)


# --- accuracy ---------------------------------------------------------------------------------------------
def test_accuracy_hand_computed():
    result = accuracy(["( 84.0 / 2.0 )", "42", "(7 * 5)", None, "2 +"], ["(84 / 2)"] * 5, "svamp")
    assert result.per_item == (True, True, False, False, False)
    assert (result.n, result.correct, result.unanswered, result.accuracy) == (5, 2, 1, 0.4)
    # One off a value over a million is wrong (a relative 1e-6 tolerance would call it right).
    assert accuracy(["1201566", "1201565"], ["( 610769.0 + 590796.0 )"] * 2, "svamp").per_item == (False, True)
    cqa = accuracy(["Math problem.", "garden center", None], ["math problem", "gravity", "park"], "cqa")
    assert cqa.per_item == (True, False, False) and cqa.accuracy == pytest.approx(1 / 3)
    assert accuracy(["Neutral"], ["neutral"], "anli").accuracy == 1.0
    assert accuracy([], [], "cqa").accuracy is None
    with pytest.raises(ValueError):
        accuracy(["x"], ["x"], "squad")
    with pytest.raises(ValueError):
        accuracy(["x"], [], "cqa")


def _jsonl(path):
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_accuracy_on_real_svamp_gold_labels(shared_data):
    root = shared_data / "distilling_step_by_step" / "svamp"
    records = _jsonl(root / "svamp_train.json") + _jsonl(root / "svamp_test.json")
    completions = []
    for name in ("train_CoT_0", "train_CoT_1", "test_CoT_0"):
        completions += json.loads((root / "llm" / f"{name}.json").read_text(encoding="utf-8"))
    golds = [r["label"] for r in records]
    assert accuracy(golds, golds, "svamp").accuracy == 1.0
    # The value of each equation, written as a number, is right; one more is wrong.
    values = [evaluate(g) for g in golds]
    assert accuracy([repr(v) for v in values], golds, "svamp").accuracy == 1.0
    assert accuracy([repr(v + 1) for v in values], golds, "svamp").correct == 0
    # PaLM's own answers score what the step-by-step report counts as agreement (unparsed: wrong).
    predictions = [parse_rationale("svamp", c).label for c in completions]
    _, report = build_examples("svamp", records, completions)
    result = accuracy(predictions, golds, "svamp")
    assert result.correct == report.agreed and result.unanswered == report.total - report.parsed
    assert 0.74 < result.accuracy < 0.76  # 749 of 1,000 (docs/algorithms.md: 959 parsed, 78.10% agree)


def test_accuracy_on_real_cqa_gold_labels(shared_data):
    root = shared_data / "distilling_step_by_step" / "cqa"
    records = _jsonl(root / "cqa_test.json")
    completions = []
    for name in ("test_CoT_0", "test_CoT_1"):
        completions += json.loads((root / "llm" / f"{name}.json").read_text(encoding="utf-8"))
    golds = [r["answer"] for r in records]
    assert accuracy([g.upper() + "." for g in golds], golds, "cqa").accuracy == 1.0
    predictions = []
    for record, completion in zip(records, completions, strict=True):
        parsed = parse_rationale("cqa", completion)
        predictions.append(teacher_label(parsed, gold_example("cqa", record)) if parsed.ok else None)
    _, report = build_examples("cqa", records, completions)
    result = accuracy(predictions, golds, "cqa")
    assert result.n == 1221 and result.correct == report.agreed
    assert result.unanswered == report.total - report.parsed


# --- regression alerts ------------------------------------------------------------------------------------
def _rate(rate, low, high, n=50):
    return RateResult(n=n, rate=rate, ci_low=low, ci_high=high)


def test_category_regressions_need_a_drop_and_separated_intervals():
    previous = {
        "Math": _rate(0.60, 0.50, 0.70),
        "Writing": _rate(0.55, 0.45, 0.65),
        "Roleplay": _rate(0.50, 0.40, 0.60),
        "Reasoning": _rate(0.70, 0.62, 0.78),
        "Others": _rate(0.40, 0.30, 0.50),
    }
    current = {
        "Math": _rate(0.30, 0.20, 0.40),  # fell 0.30, intervals apart: an alert
        "Writing": _rate(0.45, 0.35, 0.55),  # fell 0.10 but the intervals overlap: noise
        "Roleplay": _rate(0.47, 0.46, 0.48),  # intervals apart but fell only 0.03
        "Reasoning": _rate(0.50, 0.42, 0.58),  # fell 0.20, apart: an alert
        "Code Generation": _rate(0.10, 0.0, 0.2),  # new this round: nothing to compare
    }
    found = category_regressions(previous, current, min_drop=0.05)
    assert [r.category for r in found] == ["Math", "Reasoning"]  # largest drop first
    assert found[0].drop == pytest.approx(0.30)
    assert category_regressions(previous, current, min_drop=0.25)[0].category == "Math"
    assert len(category_regressions(previous, current, min_drop=0.25)) == 1
    assert category_regressions(previous, {"Math": RateResult(0, None, None, None, invalid=5)}) == []
    assert category_regressions(current, previous) == []  # improvements never alert


def test_category_regressions_from_real_per_category_results():
    """End to end over per_category: a category that collapses alerts, one that wobbles does not."""
    rng = np.random.default_rng(8)
    before = rng.choice([WIN, LOSS], p=[0.6, 0.4], size=200).tolist()
    after_math = rng.choice([WIN, LOSS], p=[0.2, 0.8], size=100).tolist()
    after_writing = rng.choice([WIN, LOSS], p=[0.55, 0.45], size=100).tolist()
    categories = ["Math"] * 100 + ["Writing"] * 100
    previous = per_category(before, categories, seed=1)
    current = per_category(after_math + after_writing, categories, seed=1)
    assert [r.category for r in category_regressions(previous, current)] == ["Math"]
