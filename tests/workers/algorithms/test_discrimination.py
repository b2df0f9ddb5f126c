import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.algorithms.config import ConfigError
from workers.algorithms.discrimination import (
    DiscriminationConfig,
    Preference,
    Verdict,
    binomial_two_sided,
    discriminate,
    position_bias,
    review_order,
)


def test_hand_computed_hard_case():
    # Teacher first: teacher 9, student 6. Student first: student 7, teacher 8.
    result = discriminate((9, 6), (7, 8))
    assert result.teacher_score == 8.5  # (9 + 8) / 2
    assert result.student_score == 6.5  # (6 + 7) / 2
    assert result.gap == 2.0
    assert result.verdict is Verdict.HARD
    assert not result.contested


def test_gap_equal_to_tau_is_hard_and_just_below_is_easy():
    assert discriminate((8, 7), (7, 8)).verdict is Verdict.HARD  # gap exactly 1.0
    assert discriminate((8, 7.5), (7, 8)).verdict is Verdict.EASY  # gap 0.75
    assert discriminate((8, 7.5), (7, 8), DiscriminationConfig(tau=0.5)).verdict is Verdict.HARD


def test_position_bias_makes_a_contested_pair():
    # Each order prefers whichever answer it showed first.
    result = discriminate((8, 6), (9, 7))
    assert result.contested
    assert (result.teacher_first, result.student_first) == (Preference.TEACHER, Preference.STUDENT)
    assert result.gap == 0.0 and result.verdict is Verdict.EASY


def test_a_tie_in_one_order_is_not_contested():
    assert not discriminate((7, 7), (8, 6)).contested


@pytest.mark.parametrize(
    ("teacher_first", "student_first"),
    [(None, (7, 8)), ((9, 6), None), (None, None), ((9, math.nan), (7, 8)), ((9, 6), (math.inf, 8))],
)
def test_unparsed_judgements_are_invalid_never_easy(teacher_first, student_first):
    result = discriminate(teacher_first, student_first)
    assert result.verdict is Verdict.INVALID
    assert result.gap is None and not result.contested


def test_review_order_puts_contested_first_then_invalid_then_nearest_the_boundary():
    results = [
        discriminate((9, 2), (2, 9)),  # clear, gap 7
        discriminate((8, 6), (9, 7)),  # contested
        discriminate(None, (1, 2)),  # invalid
        discriminate((7, 7), (7, 7.5)),  # gap 0.25
    ]
    assert review_order(results) == [1, 2, 3, 0]


SCORE = st.integers(min_value=1, max_value=10)


@given(SCORE, SCORE, SCORE, SCORE)
def test_gap_is_antisymmetric_in_the_answers(t1, s1, s2, t2):
    forward = discriminate((t1, s1), (s2, t2))
    swapped = discriminate((s1, t1), (t2, s2))  # the student's answer in the teacher's place
    assert forward.gap == -swapped.gap
    assert forward.contested == swapped.contested


def test_position_bias_counts():
    pairs = [
        ((8, 6), (9, 7)),  # first wins twice (contested)
        ((9, 6), (5, 8)),  # first wins, second wins
        ((7, 7), (6, 8)),  # tie, second wins
        (None, (6, 8)),  # invalid
    ]
    bias = position_bias(pairs)
    assert (bias.comparisons, bias.first_wins, bias.second_wins, bias.ties) == (6, 3, 2, 1)
    assert (bias.contested, bias.invalid) == (1, 1)
    assert bias.first_win_rate == 3 / 5


def test_binomial_p_value_matches_hand_values():
    assert binomial_two_sided(5, 10) == 1.0
    assert binomial_two_sided(10, 10) == pytest.approx(2 / 1024)
    assert binomial_two_sided(8, 10) == pytest.approx(2 * (45 + 10 + 1) / 1024)
    assert 0 < binomial_two_sided(6000, 10000) < 1e-80


def test_config_rejects_unknown_keys():
    with pytest.raises(ConfigError, match="allowed keys are tau"):
        DiscriminationConfig.from_dict({"tau": 1.0, "threshold": 2})
