"""One table of decisions per review kind; a decision outside it, an empty edit or an unknown category is a
clear error naming the task and what is allowed."""

import pytest

from apps.reviews.kinds import ALLOWED, Decision, Kind, ReviewError, clean_decision


def test_every_kind_has_its_decisions_and_only_those():
    assert set(ALLOWED) == set(Kind.values)
    assert ALLOWED["verdict"] == ("accept", "flip", "invalid")
    for kind in ("rewrite", "generated", "rationale", "answer"):
        assert ALLOWED[kind] == ("accept", "reject", "edit")
    assert ALLOWED["task_label"] == ("accept", "edit")
    assert ALLOWED["invalid_reply"] == ("retry", "reject")
    assert {d for allowed in ALLOWED.values() for d in allowed} == set(Decision.values)


@pytest.mark.parametrize(
    ("kind", "decision"),
    [("verdict", "reject"), ("verdict", "edit"), ("generated", "flip"), ("task_label", "reject"), ("answer", "retry")],
)
def test_a_decision_the_kind_does_not_take_is_refused_with_what_it_takes(kind, decision):
    with pytest.raises(ReviewError, match=f"'{decision}' is not allowed on task #7") as info:
        clean_decision(kind, decision, "x", where="task #7")
    assert ", ".join(ALLOWED[kind]) in str(info.value)


def test_an_edit_needs_text_and_other_decisions_keep_none():
    with pytest.raises(ReviewError, match="needs the edited text"):
        clean_decision("rewrite", "edit", "   ")
    assert clean_decision("rewrite", "edit", "  Better.  ") == ("edit", "Better.")
    assert clean_decision("rewrite", "accept", "ignored") == ("accept", "")


def test_a_task_label_edit_is_a_category_of_the_vocabulary_under_its_own_name():
    assert clean_decision("task_label", "edit", "code generation") == ("edit", "Code Generation")
    assert clean_decision("task_label", "edit", "coding") == ("edit", "Code Generation")  # a mapped label
    with pytest.raises(ReviewError, match="'Cooking' on task #3 is not a task category; choose one of: Math"):
        clean_decision("task_label", "edit", "Cooking", where="task #3")


def test_an_unknown_kind_is_named():
    with pytest.raises(ReviewError, match="Unknown review kind 'verdicts'"):
        clean_decision("verdicts", "accept")
