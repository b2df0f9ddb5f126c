from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.algorithms.config import ConfigError
from workers.algorithms.resampling import (
    TAPIR_TASK_RATIOS,
    TASK_CATEGORIES,
    ResamplingConfig,
    UnknownTaskLabel,
    resample_by_task,
)


def test_default_ratios_are_the_easydistill_tapir_ratios():
    assert len(TASK_CATEGORIES) == 32
    assert TAPIR_TASK_RATIOS["Math"] == TAPIR_TASK_RATIOS["Reasoning"] == 0.167
    assert TAPIR_TASK_RATIOS["Code Generation"] == TAPIR_TASK_RATIOS["Code Debug"] == 0.083
    assert TAPIR_TASK_RATIOS["Others"] == 0.041
    assert sorted({TAPIR_TASK_RATIOS[c] for c in TASK_CATEGORIES}) == [0.017, 0.041, 0.083, 0.167]
    assert sum(TAPIR_TASK_RATIOS.values()) == pytest.approx(1.0)


def test_hand_computed_case():
    labels = ["Math"] * 3 + ["Writing"] * 10 + ["Code Debug"] * 2
    config = ResamplingConfig(ratios={"Math": 0.5, "Writing": 0.2, "Code Debug": 0.1, "Law": 0.2}, total=20)
    result = resample_by_task(labels, config)
    counts = Counter(labels[i] for i in result.indices)
    # Targets: Math 10 (3 items: 3 whole copies + 1), Writing 4 (of 10), Code Debug 2 (both), Law 4 (none).
    assert counts == {"Math": 10, "Writing": 4, "Code Debug": 2}
    assert Counter(i for i in result.indices if labels[i] == "Math") in (
        Counter({0: 4, 1: 3, 2: 3}),
        Counter({0: 3, 1: 4, 2: 3}),
        Counter({0: 3, 1: 3, 2: 4}),
    )
    assert result.short == ["Math"]
    assert (result.empty, result.missing) == (["Law"], 4)
    writing = [i for i in result.indices if labels[i] == "Writing"]
    assert len(set(writing)) == 4  # without replacement


LABELS = st.lists(st.sampled_from(["Math", "Reasoning", "Writing", "Law", "Art", "Code Debug"]), max_size=200)


@given(LABELS, st.integers(0, 500), st.integers(0, 3))
def test_counts_are_int_n_times_ratio_and_reproducible(labels, total, seed):
    config = ResamplingConfig(total=total, seed=seed)
    result = resample_by_task(labels, config)
    assert result == resample_by_task(labels, config)
    counts = Counter(labels[i] for i in result.indices)
    present = set(labels)
    for category, ratio in TAPIR_TASK_RATIOS.items():
        expected = int(total * ratio) if category in present else 0
        assert abs(counts.get(category, 0) - expected) <= 1
        assert counts.get(category, 0) == result.categories[category].drawn
    assert result.missing == sum(int(total * TAPIR_TASK_RATIOS[c]) for c in result.empty)
    for category in present & set(TAPIR_TASK_RATIOS):
        members = [i for i in result.indices if labels[i] == category]
        available = labels.count(category)
        per_item = Counter(members)
        # Whole copies first: every item appears floor(target / available) or one more times.
        assert max(per_item.values(), default=0) - min(per_item.values(), default=0) <= 1
        if len(members) <= available:
            assert len(per_item) == len(members)


def test_editing_one_ratio_leaves_other_categories_draws_alone():
    labels = ["Math"] * 50 + ["Writing"] * 50 + ["Law"] * 50
    base = {"Math": 0.3, "Writing": 0.3, "Law": 0.3}
    first = resample_by_task(labels, ResamplingConfig(ratios=base, total=100, seed=4))
    second = resample_by_task(labels, ResamplingConfig(ratios={**base, "Law": 0.1}, total=100, seed=4))
    math_first = sorted(i for i in first.indices if labels[i] == "Math")
    math_second = sorted(i for i in second.indices if labels[i] == "Math")
    assert math_first == math_second
    other_seed = resample_by_task(labels, ResamplingConfig(ratios=base, total=100, seed=5))
    assert sorted(other_seed.indices) != sorted(first.indices)


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown key"):
        ResamplingConfig.from_dict({"ratio": {}})
    with pytest.raises(ConfigError, match="must be a number in"):
        ResamplingConfig.from_dict({"ratios": {"Math": 1.5}})
    assert ResamplingConfig.from_dict({"ratios": {"Math": 1.0}, "total": 10}).total == 10


def test_a_label_outside_the_vocabulary_is_an_error_not_a_silent_drop():
    # The classifier prompt used to offer "Coding": such items were never drawn, though TAPIR up-weights code.
    with pytest.raises(UnknownTaskLabel, match="'Coding'"):
        resample_by_task(["Math", "Coding", "Writing"], ResamplingConfig(total=10))
    with pytest.raises(ConfigError, match="outside the task vocabulary"):
        ResamplingConfig(ratios={"Coding": 0.5})


def test_categories_left_out_of_an_edited_table_are_reported():
    result = resample_by_task(["Math", "Law", "Law"], ResamplingConfig(ratios={"Math": 1.0}, total=2))
    assert result.unlisted == {"Law": 2}
    assert [result.categories["Math"].drawn, len(result.indices)] == [2, 2]
