"""TAPIR's curriculum: Model Fitting Difficulty, hard-share seed selection, and the rising hard share.

Model Fitting Difficulty (MFD) of an instruction is the judge's teacher score minus its student score, from
the same two-order judgement as Lion's discrimination (so it is `discrimination.discriminate(...).gap`).
Round r draws its seeds with a share alpha_r of hard items (MFD above the threshold) and 1 - alpha_r easy
ones, which keep the seed set diverse; after each round alpha_{r+1} = min(1, alpha_r + delta).

The paper does not publish alpha_0, delta or the number of rounds in code; the defaults here
(alpha_0 = 0.3, delta = 0.2, 3 rounds) are ours. "Hard" is MFD strictly above the threshold, as the paper
words it; Lion's discrimination counts a gap equal to tau as hard.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from workers.algorithms.config import AlgorithmConfig, ConfigError, check_int, check_range
from workers.algorithms.discrimination import Scores, discriminate


@dataclasses.dataclass(frozen=True, kw_only=True)
class CurriculumConfig(AlgorithmConfig):
    """Defaults are ours (see the module docstring); hard_threshold is on the judge's 1-10 scale."""

    alpha0: float = 0.3
    delta: float = 0.2
    rounds: int = 3
    hard_threshold: float = 1.0

    def __post_init__(self) -> None:
        check_range(self, "alpha0", self.alpha0, 0.0, 1.0)
        check_range(self, "delta", self.delta, 0.0, 1.0)
        check_int(self, "rounds", self.rounds, 1)
        check_range(self, "hard_threshold", self.hard_threshold, -math.inf, math.inf)


def model_fitting_difficulty(teacher_first: Scores, student_first: Scores) -> float | None:
    """Teacher score minus student score over both orders; None when either judgement failed to parse."""
    return discriminate(teacher_first, student_first).gap


def next_alpha(alpha: float, delta: float) -> float:
    return min(1.0, alpha + delta)


def hard_share(round_index: int, config: CurriculumConfig | None = None) -> float:
    """alpha_r for round r (0-based): alpha_0 raised by delta per round, capped at 1."""
    config = config or CurriculumConfig()
    if round_index < 0 or round_index >= config.rounds:
        raise ConfigError(f"round {round_index} is outside the curriculum's {config.rounds} rounds")
    alpha = config.alpha0
    for _ in range(round_index):
        alpha = next_alpha(alpha, config.delta)
    return alpha


@dataclasses.dataclass(frozen=True)
class SeedSelection:
    indices: list[int]  # into the MFD list: hard picks then easy picks, each in drawn order
    hard: int
    easy: int
    hard_short: int  # how many hard seeds the share asked for but the pool lacked
    easy_short: int
    skipped_invalid: int  # items without an MFD (a judgement failed); never drawn


def select_seeds(
    mfd: Sequence[float | None],
    n: int,
    alpha: float,
    *,
    hard_threshold: float = 1.0,
    seed: int = 0,
) -> SeedSelection:
    """Draw n seeds, round(alpha * n) of them hard and the rest easy, without replacement.

    A side that has too few items gives all it has and the shortfall is reported, not filled from the
    other side: the hard share is the point of the curriculum, so it is never quietly changed.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha must be in [0, 1]")
    hard = [i for i, d in enumerate(mfd) if d is not None and d > hard_threshold]
    easy = [i for i, d in enumerate(mfd) if d is not None and d <= hard_threshold]
    want_hard = math.floor(alpha * n + 0.5)
    want_easy = n - want_hard
    rng = np.random.default_rng(seed)
    take_hard = min(want_hard, len(hard))
    take_easy = min(want_easy, len(easy))
    picked_hard = [hard[i] for i in rng.choice(len(hard), size=take_hard, replace=False)]
    picked_easy = [easy[i] for i in rng.choice(len(easy), size=take_easy, replace=False)]
    return SeedSelection(
        indices=picked_hard + picked_easy,
        hard=take_hard,
        easy=take_easy,
        hard_short=want_hard - take_hard,
        easy_short=want_easy - take_easy,
        skipped_invalid=sum(d is None for d in mfd),
    )
