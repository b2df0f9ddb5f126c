import pytest

from workers.algorithms.task_vocabulary import (
    BENCHMARK_MAPPINGS,
    TASK_CATEGORIES,
    UnknownTaskLabel,
    check_task_categories,
    is_task_category,
    response_style,
    to_task_category,
)


def test_the_vocabulary_is_tapirs_32_categories():
    assert len(TASK_CATEGORIES) == len(set(TASK_CATEGORIES)) == 32
    assert TASK_CATEGORIES[:5] == ("Math", "Reasoning", "Code Generation", "Code Debug", "Others")
    assert all(is_task_category(c) for c in TASK_CATEGORIES)
    assert not is_task_category("math")  # a category is spelled exactly; other spellings go through the mapping


def test_every_category_maps_to_itself_in_any_case():
    for category in TASK_CATEGORIES:
        assert to_task_category(category.upper()) == category


def test_mappings_name_only_categories():
    for mapping in BENCHMARK_MAPPINGS.values():
        assert set(mapping.values()) <= set(TASK_CATEGORIES)
    with pytest.raises(ValueError, match="unknown label source"):
        to_task_category("coding", source="alpaca")


def test_check_names_every_unknown_label():
    check_task_categories(["Math", "Others"])
    with pytest.raises(UnknownTaskLabel, match="'Coding', 'STEM'"):
        check_task_categories(["Math", "STEM", "Coding", "STEM"])


def test_response_styles():
    assert [response_style(c) for c in ("Math", "Reasoning", "Code Debug", "Law")] == [
        "chain_of_thought",
        "chain_of_thought",
        "commented_code",
        "detailed",
    ]
