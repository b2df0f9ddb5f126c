"""Lion's discrimination stage: is an instruction hard or easy for the student?

A judge scores the teacher's and the student's answers twice, once with each answer first, because judges
favour a position. With (t1, s1) from the teacher-first order and (s2, t2) from the student-first order:

    teacher = (t1 + t2) / 2,  student = (s1 + s2) / 2,  gap d = teacher - student
    hard iff d >= tau (Lion: 1.0), else easy.

An instruction whose judgement failed to parse in either order is invalid, never easy: calling it easy would
silently drop it from the hard set. When the two orders disagree on which answer is better, the pair is
contested: the judge's verdict there is mostly position bias, so reviewers see those first.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from enum import StrEnum

from workers.algorithms.config import AlgorithmConfig, check_range

Scores = tuple[float, float] | None  # the two scores of one order, in the order shown; None = unparsed


class Verdict(StrEnum):
    HARD = "hard"
    EASY = "easy"
    INVALID = "invalid"


class Preference(StrEnum):
    TEACHER = "teacher"
    STUDENT = "student"
    TIE = "tie"


@dataclasses.dataclass(frozen=True, kw_only=True)
class DiscriminationConfig(AlgorithmConfig):
    """tau: the gap at or above which an instruction is hard (Lion: 1.0 on the judge's 1-10 scale)."""

    tau: float = 1.0

    def __post_init__(self) -> None:
        check_range(self, "tau", self.tau, -math.inf, math.inf)


@dataclasses.dataclass(frozen=True)
class Discrimination:
    verdict: Verdict
    teacher_score: float | None
    student_score: float | None
    gap: float | None
    contested: bool  # the orders prefer different answers (a tie in one order is not a disagreement)
    teacher_first: Preference | None  # which answer the teacher-first order preferred
    student_first: Preference | None  # ... and the student-first order

    @property
    def review_key(self) -> tuple[int, float]:
        """Sort key for the review queue: contested first, then invalid, then closest to the boundary."""
        rank = 0 if self.contested else 1 if self.verdict is Verdict.INVALID else 2
        return rank, abs(self.gap) if self.gap is not None else 0.0


def _valid(scores: Scores) -> bool:
    return scores is not None and len(scores) == 2 and all(math.isfinite(float(x)) for x in scores)


def _preference(teacher: float, student: float) -> Preference:
    if teacher > student:
        return Preference.TEACHER
    if student > teacher:
        return Preference.STUDENT
    return Preference.TIE


def discriminate(
    teacher_first: Scores, student_first: Scores, config: DiscriminationConfig | None = None
) -> Discrimination:
    """Classify one instruction from its two judgements.

    teacher_first: (teacher score, student score) with the teacher's answer shown first.
    student_first: (student score, teacher score) with the student's answer shown first.
    """
    config = config or DiscriminationConfig()
    if not (_valid(teacher_first) and _valid(student_first)):
        return Discrimination(Verdict.INVALID, None, None, None, False, None, None)
    assert teacher_first is not None and student_first is not None
    t1, s1 = (float(x) for x in teacher_first)
    s2, t2 = (float(x) for x in student_first)
    teacher = (t1 + t2) / 2
    student = (s1 + s2) / 2
    gap = teacher - student
    first, second = _preference(t1, s1), _preference(t2, s2)
    contested = {first, second} == {Preference.TEACHER, Preference.STUDENT}
    verdict = Verdict.HARD if gap >= config.tau else Verdict.EASY
    return Discrimination(verdict, teacher, student, gap, contested, first, second)


def review_order(results: Sequence[Discrimination]) -> list[int]:
    """Indices in review-queue order (contested first); stable, so equal keys keep their input order."""
    return sorted(range(len(results)), key=lambda i: results[i].review_key)


@dataclasses.dataclass(frozen=True)
class PositionBias:
    """How often the answer shown first wins, over every decided comparison of a batch.

    Each valid instruction gives two comparisons (one per order); ties decide nothing and are counted
    apart. With no bias, first_win_rate is about 0.5; p_value is the exact two-sided binomial test of that.
    """

    comparisons: int
    first_wins: int
    second_wins: int
    ties: int
    contested: int
    invalid: int

    @property
    def first_win_rate(self) -> float | None:
        decided = self.first_wins + self.second_wins
        return self.first_wins / decided if decided else None

    @property
    def p_value(self) -> float | None:
        decided = self.first_wins + self.second_wins
        return binomial_two_sided(self.first_wins, decided) if decided else None


def position_bias(pairs: Iterable[tuple[Scores, Scores]]) -> PositionBias:
    """Position-bias statistics over (teacher_first, student_first) score pairs."""
    comparisons = first_wins = second_wins = ties = contested = invalid = 0
    for teacher_first, student_first in pairs:
        if not (_valid(teacher_first) and _valid(student_first)):
            invalid += 1
            continue
        assert teacher_first is not None and student_first is not None
        for shown_first, shown_second in (teacher_first, student_first):
            comparisons += 1
            if shown_first > shown_second:
                first_wins += 1
            elif shown_second > shown_first:
                second_wins += 1
            else:
                ties += 1
        contested += discriminate(teacher_first, student_first).contested
    return PositionBias(comparisons, first_wins, second_wins, ties, contested, invalid)


def binomial_two_sided(successes: int, trials: int) -> float:
    """Exact two-sided binomial p-value for p = 0.5: the chance of a split at least this uneven."""
    if trials == 0:
        return 1.0
    extreme = max(successes, trials - successes)
    # P(X >= extreme) for X ~ Bin(trials, 1/2), summed in log space so large batches do not underflow.
    log_terms = [
        math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1) - trials * math.log(2)
        for k in range(extreme, trials + 1)
    ]
    top = max(log_terms)
    tail = math.exp(top) * sum(math.exp(term - top) for term in log_terms)
    return min(1.0, 2 * tail) if 2 * extreme != trials else 1.0
