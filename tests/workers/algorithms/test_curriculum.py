import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.algorithms.config import ConfigError
from workers.algorithms.curriculum import (
    CurriculumConfig,
    hard_share,
    model_fitting_difficulty,
    next_alpha,
    select_seeds,
)


def test_mfd_is_the_two_order_gap():
    assert model_fitting_difficulty((9, 6), (7, 8)) == 2.0
    assert model_fitting_difficulty(None, (7, 8)) is None


def test_default_schedule_rises_by_delta_and_caps_at_one():
    assert [hard_share(r) for r in range(3)] == pytest.approx([0.3, 0.5, 0.7])
    config = CurriculumConfig(alpha0=0.7, delta=0.25, rounds=4)
    assert [hard_share(r, config) for r in range(4)] == pytest.approx([0.7, 0.95, 1.0, 1.0])
    assert next_alpha(0.9, 0.2) == 1.0
    with pytest.raises(ConfigError, match="outside"):
        hard_share(3)


def test_hand_computed_selection():
    mfd = [2.0, 0.5, None, 1.0, 3.0, -1.0, 1.5, 0.0]
    # Hard (> 1.0): 0, 4, 6. Easy (<= 1.0): 1, 3, 5, 7. Invalid: 2.
    selection = select_seeds(mfd, 4, 0.5, seed=3)
    assert (selection.hard, selection.easy, selection.skipped_invalid) == (2, 2, 1)
    assert set(selection.indices[:2]) <= {0, 4, 6}
    assert set(selection.indices[2:]) <= {1, 3, 5, 7}


def test_shortfalls_are_reported_not_filled():
    selection = select_seeds([2.0, 0.0, 0.0, 0.0], 4, 0.75)
    assert (selection.hard, selection.hard_short, selection.easy, selection.easy_short) == (1, 2, 1, 0)
    assert len(selection.indices) == 2


@given(
    st.lists(st.one_of(st.none(), st.floats(-9, 9)), max_size=60),
    st.integers(0, 60),
    st.floats(0, 1),
    st.integers(0, 5),
)
def test_selection_properties(mfd, n, alpha, seed):
    first = select_seeds(mfd, n, alpha, seed=seed)
    assert first == select_seeds(mfd, n, alpha, seed=seed)
    assert len(set(first.indices)) == len(first.indices)  # without replacement
    assert first.hard + first.hard_short + first.easy + first.easy_short == n
    assert all(mfd[i] is not None for i in first.indices)
    assert all(mfd[i] > 1.0 for i in first.indices[: first.hard])
    assert all(mfd[i] <= 1.0 for i in first.indices[first.hard :])


def test_config_from_dict():
    assert CurriculumConfig.from_dict({"delta": 0.1}).delta == 0.1
    with pytest.raises(ConfigError, match="unknown key"):
        CurriculumConfig.from_dict({"alpha_0": 0.2})
    with pytest.raises(ConfigError, match="rounds must be an integer"):
        CurriculumConfig.from_dict({"rounds": 0})
