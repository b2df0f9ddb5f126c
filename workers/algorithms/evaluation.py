"""Evaluation after a round: the student's win rate against the teacher, with its uncertainty.

Outcomes. A pairwise judge scores both answers twice, once with each shown first (as in discrimination):
teacher-first (t1, s1) and student-first (s2, t2). Each answer's score is averaged over the two orders,
teacher = (t1 + t2)/2 and student = (s1 + s2)/2, and then compared: the student wins (1) when its average
is higher, ties (0.5) when the two are equal (within `tie_margin`), loses (0) otherwise. Averaging first
cancels a constant bonus a judge gives whichever answer it reads first, and it reads the same gap the
discrimination stage reads, so an item is never a win here and "easy" there for different reasons. An
item whose judgement failed to parse in either order is invalid: it is left out of every rate and
counted apart, never scored as a loss or a tie.

Uncertainty is a seeded percentile bootstrap. Per category, each category's stream is seeded from
(seed, crc32(category)), so adding a category never changes another's interval.

Length control follows the idea of AlpacaEval 2 (Dubois et al., 2024): judges prefer longer answers, so a
student can "win" by talking more. A logistic model explains each outcome by an intercept and the
standardised length difference; the length-controlled win rate is the model's prediction with the length
term at zero, i.e. for answers of equal length:

    x_i = tanh(d_i / sd(d)),  d_i = len(student_i) - len(teacher_i)   (sd over the set, not centred)
    P(student wins i) = sigmoid(b0 + b1 * x_i)
    LC win rate = sigmoid(b0)

(b0, b1) maximise the Bernoulli log-likelihood of the outcomes (a tie is y = 0.5) minus l2/2 * |b|^2,
found by Newton's method (iteratively reweighted least squares) with step halving. The small L2 term keeps
the fit finite when every outcome is the same. AlpacaEval also models instruction difficulty across many
models; with one student and one teacher there is nothing to identify it from, so that term is left out.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from workers.algorithms.discrimination import Scores, discriminate
from workers.algorithms.step_by_step.examples import equations_agree, labels_agree
from workers.algorithms.step_by_step.rationales import DATASETS

WIN, TIE, LOSS = 1.0, 0.5, 0.0
_EPS = 1e-9
ANSWER_REL_TOL = 1e-9  # SVAMP answers: relative tolerance of the value comparison
_MAX_CELLS = 4_000_000  # bootstrap work per chunk (resamples x distinct values)


# --- outcomes --------------------------------------------------------------------------------------------
def judge_outcome(teacher_first: Scores, student_first: Scores, *, tie_margin: float = 0.0) -> float | None:
    """The student's outcome on one item from its two-order judgement: 1 win, 0.5 tie, 0 loss, None invalid.

    teacher_first: (teacher score, student score), the teacher's answer shown first;
    student_first: (student score, teacher score), the student's answer shown first.
    """
    judged = discriminate(teacher_first, student_first)
    if judged.gap is None:
        return None
    if abs(judged.gap) <= tie_margin + _EPS:
        return TIE
    return WIN if judged.gap < 0 else LOSS


def judge_outcomes(pairs: Iterable[tuple[Scores, Scores]], *, tie_margin: float = 0.0) -> list[float | None]:
    """judge_outcome for each (teacher_first, student_first) pair, in order."""
    return [judge_outcome(tf, sf, tie_margin=tie_margin) for tf, sf in pairs]


def _valid(values: Iterable[float | None]) -> np.ndarray:
    array = np.array([v for v in values if v is not None], dtype=float)
    if array.size and not np.all(np.isfinite(array)):
        raise ValueError("outcomes must be finite numbers (or None for an invalid item)")
    return array


def win_rate(outcomes: Iterable[float | None]) -> float | None:
    """Mean outcome over the valid items (ties count half); None when there is none."""
    values = _valid(outcomes)
    return float(values.mean()) if values.size else None


def bootstrap_ci(
    values: Iterable[float | None], n_resamples: int = 2000, seed: int | Sequence[int] = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean: `n_resamples` resamples of the valid values with
    replacement, the (1 - level)/2 and (1 + level)/2 quantiles (numpy's linear interpolation) of their
    means. Seeded, so the same input gives the same interval. None for no values.

    A resample is drawn as the counts of each distinct value (one multinomial draw), which has exactly the
    distribution of drawing n indices, in memory that grows with the distinct values, not with n."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    data = _valid(values)
    if not data.size:
        return None
    distinct, counts = np.unique(data, return_counts=True)
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_CELLS // distinct.size)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        drawn = rng.multinomial(data.size, counts / data.size, size=size)
        means[start : start + size] = drawn @ distinct / data.size
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


@dataclasses.dataclass(frozen=True)
class RateResult:
    """A win rate (or accuracy) with its interval; `invalid` items are not in `n`."""

    n: int
    rate: float | None
    ci_low: float | None
    ci_high: float | None
    invalid: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def rate_result(
    values: Sequence[float | None], *, n_resamples: int = 2000, seed: int | Sequence[int] = 0, level: float = 0.95
) -> RateResult:
    """Rate, bootstrap interval and counts of one set of outcomes (None = invalid)."""
    valid = _valid(values)
    ci = bootstrap_ci(valid, n_resamples=n_resamples, seed=seed, level=level)
    return RateResult(
        n=int(valid.size),
        rate=float(valid.mean()) if valid.size else None,
        ci_low=ci[0] if ci else None,
        ci_high=ci[1] if ci else None,
        invalid=len(values) - int(valid.size),
    )


def category_seed(seed: int, category: str) -> list[int]:
    """The bootstrap seed of one category: its own stream, independent of the other categories."""
    return [int(seed), zlib.crc32(category.encode("utf-8"))]


def per_category(
    outcomes: Sequence[float | None],
    categories: Sequence[str],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, RateResult]:
    """RateResult per category (sorted by name); an item's category is categories[i]."""
    if len(outcomes) != len(categories):
        raise ValueError(f"{len(outcomes)} outcomes but {len(categories)} categories")
    grouped: dict[str, list[float | None]] = {}
    for value, category in zip(outcomes, categories, strict=True):
        grouped.setdefault(category, []).append(value)
    return {
        name: rate_result(grouped[name], n_resamples=n_resamples, seed=category_seed(seed, name), level=level)
        for name in sorted(grouped)
    }


# --- length control --------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LengthControlled:
    win_rate: float | None  # sigmoid(intercept): the win rate at equal length
    raw_win_rate: float | None
    intercept: float
    length_coef: float  # > 0: the judge favours the longer answer
    scale: float  # sd of the length differences the tanh divides by (0: no length information)
    n: int
    iterations: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|


def _penalised_loglik(beta: np.ndarray, x: np.ndarray, y: np.ndarray, l2: float) -> float:
    z = x @ beta
    # y*log(p) + (1-y)*log(1-p) = y*z - log(1 + e^z), computed without overflow.
    return float(np.sum(y * z - np.logaddexp(0.0, z)) - 0.5 * l2 * beta @ beta)


def length_controlled_win_rate(
    outcomes: Sequence[float | None],
    length_diffs: Sequence[float],
    *,
    l2: float = 1e-2,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> LengthControlled:
    """The win rate with the judge's length preference removed (formula in the module docstring).

    length_diffs[i] = length of the student's answer minus the teacher's on item i (characters or tokens;
    the unit cancels in the standardisation). Invalid items (outcome None) are left out."""
    if len(outcomes) != len(length_diffs):
        raise ValueError(f"{len(outcomes)} outcomes but {len(length_diffs)} length differences")
    keep = [i for i, v in enumerate(outcomes) if v is not None]
    y = _valid(outcomes)
    d = np.array([float(length_diffs[i]) for i in keep], dtype=float)
    if d.size and not np.all(np.isfinite(d)):
        raise ValueError("length differences must be finite")
    if np.any((y < 0) | (y > 1)):
        raise ValueError("outcomes must lie in [0, 1]")
    if not y.size:
        return LengthControlled(None, None, 0.0, 0.0, 0.0, 0, 0)
    scale = float(d.std())
    # Without length differences there is no length term to fit: the intercept alone.
    columns = [np.ones_like(d), np.tanh(d / scale)] if scale > 0 else [np.ones_like(d)]
    x = np.column_stack(columns)
    beta = np.zeros(x.shape[1])
    current = _penalised_loglik(beta, x, y, l2)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        p = _sigmoid(x @ beta)
        gradient = x.T @ (y - p) - l2 * beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        size = 1.0
        while True:  # halve the step until the penalised likelihood does not fall
            candidate = beta + size * step
            value = _penalised_loglik(candidate, x, y, l2)
            if value >= current - 1e-12 or size < 1e-8:
                break
            size /= 2
        beta, previous, current = candidate, current, value
        if np.max(np.abs(size * step)) < tol or abs(current - previous) < tol * (1 + abs(current)):
            break
    intercept, slope = float(beta[0]), float(beta[1]) if beta.size > 1 else 0.0
    return LengthControlled(
        win_rate=float(_sigmoid(np.array(intercept))),
        raw_win_rate=float(y.mean()),
        intercept=intercept,
        length_coef=slope,
        scale=scale,
        n=int(y.size),
        iterations=iterations,
    )


# --- accuracy on labelled tasks ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Accuracy:
    n: int
    correct: int
    unanswered: int  # predictions that were None (the student gave no parsable answer): counted wrong
    accuracy: float | None
    per_item: tuple[bool, ...]

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "per_item"}


def is_correct(prediction: str | None, gold: str, dataset_kind: str) -> bool:
    """SVAMP: both sides evaluate (numbers, + - * /, parentheses) to the same value (to a relative 1e-9),
    so "42" and "( 84.0 / 2.0 )" agree; a prediction that is not arithmetic is wrong. Other kinds:
    normalised exact match (lower case, single spaces, no punctuation at either end)."""
    if dataset_kind not in DATASETS:
        raise ValueError(f"unknown dataset kind {dataset_kind!r}; expected one of {', '.join(DATASETS)}")
    if prediction is None:
        return False
    if dataset_kind == "svamp":
        # 1e-9, not the teacher-label check's 1e-6: at 1e-6 an answer one off a gold value over a million
        # (five SVAMP problems) would count as right. Float rounding differences are far below 1e-9.
        return equations_agree(prediction, gold, rel_tol=ANSWER_REL_TOL)
    return labels_agree(dataset_kind, prediction, gold)  # type: ignore[arg-type]


def accuracy(predictions: Sequence[str | None], golds: Sequence[str], dataset_kind: str) -> Accuracy:
    """Share of predictions that match their gold label (see is_correct); None predictions are wrong."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions but {len(golds)} gold labels")
    per_item = tuple(is_correct(p, g, dataset_kind) for p, g in zip(predictions, golds, strict=True))
    correct = sum(per_item)
    return Accuracy(
        n=len(per_item),
        correct=correct,
        unanswered=sum(p is None for p in predictions),
        accuracy=correct / len(per_item) if per_item else None,
        per_item=per_item,
    )


# --- regression alerts ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Regression:
    category: str
    previous: RateResult
    current: RateResult

    @property
    def drop(self) -> float:
        assert self.previous.rate is not None and self.current.rate is not None
        return self.previous.rate - self.current.rate


def category_regressions(
    previous: Mapping[str, RateResult], current: Mapping[str, RateResult], min_drop: float = 0.05
) -> list[Regression]:
    """Categories that fell back between two rounds, largest drop first.

    A category regresses when it has a rate in both rounds, the rate fell by more than `min_drop`, and
    the intervals do not overlap: the current upper bound lies below the previous lower bound. Two
    non-overlapping 95% intervals are a stricter test than a 5% one, on purpose: a round evaluates many
    categories, often with a few dozen items each, and an alert should mean the category really got worse,
    not that one of eight noisy rates dipped. A category new or missing in either round is not compared."""
    if min_drop < 0:
        raise ValueError(f"min_drop must be >= 0, got {min_drop!r}")
    found = []
    for category in sorted(set(previous) & set(current)):
        before, now = previous[category], current[category]
        if before.rate is None or now.rate is None:
            continue
        if before.rate - now.rate <= min_drop:
            continue
        if before.ci_low is None or now.ci_high is None or not now.ci_high < before.ci_low:
            continue
        found.append(Regression(category, before, now))
    return sorted(found, key=lambda r: (-r.drop, r.category))


# --- one round's summary ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class WinRateReport:
    overall: RateResult
    by_category: dict[str, RateResult]
    length_controlled: LengthControlled | None
    outcomes: tuple[float | None, ...]

    def to_dict(self) -> dict:
        """JSON-safe, for a round's stored metrics and the console's charts."""
        return {
            "overall": self.overall.to_dict(),
            "by_category": {k: v.to_dict() for k, v in self.by_category.items()},
            "length_controlled": self.length_controlled.to_dict() if self.length_controlled else None,
            "counts": {
                "win": sum(o == WIN for o in self.outcomes),
                "tie": sum(o == TIE for o in self.outcomes),
                "loss": sum(o == LOSS for o in self.outcomes),
                "invalid": sum(o is None for o in self.outcomes),
            },
        }


def win_rate_report(
    pairs: Sequence[tuple[Scores, Scores]],
    categories: Sequence[str] | None = None,
    length_diffs: Sequence[float] | None = None,
    *,
    seed: int = 0,
    n_resamples: int = 2000,
    level: float = 0.95,
    tie_margin: float = 0.0,
) -> WinRateReport:
    """Everything one evaluation reports from the two-order judgements of its items."""
    outcomes = judge_outcomes(pairs, tie_margin=tie_margin)
    overall = rate_result(outcomes, n_resamples=n_resamples, seed=seed, level=level)
    by_category = (
        per_category(outcomes, categories, n_resamples=n_resamples, seed=seed, level=level)
        if categories is not None
        else {}
    )
    controlled = length_controlled_win_rate(outcomes, length_diffs) if length_diffs is not None else None
    return WinRateReport(overall, by_category, controlled, tuple(outcomes))
