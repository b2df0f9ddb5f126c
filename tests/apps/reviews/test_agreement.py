"""Agreement figures against values computed by hand: Cohen's kappa on the textbook 2x2 table, Fleiss'
kappa on the textbook 10-subject table, and the SQL selectors over real votes (queue, pairs, against the
resolution); the judge overturned by reviewers per round and category."""

import pytest

from apps.core.roles import Role
from apps.experiments.models import TaskLabel
from apps.experiments.review_stats import judge_overturns
from apps.experiments.stages.review_gate import auto_reviewer
from apps.judging.models import Judgment, Response
from apps.reviews.agreement import (
    cohen_kappa,
    fleiss_counts,
    pair_agreement,
    pooled_kappa,
    queue_agreement,
    resolution_agreement,
)
from apps.reviews.services import review_decide, review_resolve, review_tasks_auto_accept
from tests.apps.reviews.conftest import make_round
from tests.factories import InstructionFactory, ReviewTaskFactory, UserFactory


def test_cohens_kappa_on_the_textbook_two_by_two_table():
    # 50 items: both yes 20, A yes / B no 5, A no / B yes 10, both no 15. p_o = 0.7, p_e = 0.5: kappa 0.4.
    result = cohen_kappa({("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15})
    assert result.n == 50
    assert result.percent == pytest.approx(70.0)
    assert result.kappa == pytest.approx(0.4)


def test_kappa_is_undefined_when_chance_explains_everything_and_empty_tables_have_no_figures():
    assert cohen_kappa({("a", "a"): 9}).kappa is None and cohen_kappa({("a", "a"): 9}).percent == 100.0
    assert cohen_kappa({}) == cohen_kappa({}).__class__(0, None, None)
    assert pooled_kappa(category_votes={}, agreeing_pairs=0, pairs=0).kappa is None
    assert cohen_kappa({("a", "b"): 3, ("b", "a"): 3}).kappa == pytest.approx(-1.0)


def test_fleiss_kappa_on_the_textbook_ten_subjects_by_fourteen_raters():
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]  # fmt: skip
    per_task = [{str(c): n for c, n in enumerate(row) if n} for row in table]
    result = pooled_kappa(**fleiss_counts(per_task))
    # P-bar = 0.378, P_e = 0.213, kappa = 0.210 (Fleiss 1971, as usually reproduced).
    assert result.percent == pytest.approx(37.8, abs=0.05)
    assert result.kappa == pytest.approx(0.210, abs=0.0005)
    assert result.tasks == 10 and result.n == 10 * 91


@pytest.fixture
def three_reviewers_on_four_tasks(db):
    """A, B and C vote on four rationale tasks (overlap 3); an operator settles the three conflicts.

    task  A       B       C       resolution
    1     accept  accept  accept  accept (agreed)
    2     accept  accept  reject  accept
    3     reject  reject  edit    reject
    4     accept  reject  edit    reject
    """
    round_ = make_round()
    a, b, c = (UserFactory(username=name, role=Role.REVIEWER) for name in ("ann", "bob", "cat"))
    operator = UserFactory(role=Role.OPERATOR)
    votes = [
        ("accept", "accept", "accept", None),
        ("accept", "accept", "reject", "accept"),
        ("reject", "reject", "edit", "reject"),
        ("accept", "reject", "edit", "reject"),
    ]
    for row in votes:
        task = ReviewTaskFactory(kind="rationale", round=round_, required_reviews=3)
        for person, decision in zip((a, b, c), row[:3], strict=True):
            review_decide(reviewer=person, task_id=task.pk, decision=decision, edited_text="Shorter.")
        if row[3] is not None:
            review_resolve(by=operator, task_id=task.pk, decision=row[3])
    other = make_round()
    review_decide(
        reviewer=a, task_id=ReviewTaskFactory(kind="rationale", round=other, required_reviews=1).pk, decision="reject"
    )
    return round_, other


def test_queue_agreement_counts_vote_pairs_in_sql(three_reviewers_on_four_tasks):
    round_, other = three_reviewers_on_four_tasks
    # 12 pairs, 5 agree: p_o = 5/12; votes accept 6, reject 4, edit 2: p_e = 7/18; kappa = 1/22.
    result = queue_agreement(kind="rationale", round_ids=[round_.pk])
    assert (result.tasks, result.n) == (4, 12)
    assert result.percent == pytest.approx(100 * 5 / 12)
    assert result.kappa == pytest.approx(1 / 22)
    assert queue_agreement(kind="rationale") == result  # the other round's lone vote has no pair
    assert queue_agreement(kind="rationale", round_ids=[other.pk]).kappa is None
    assert queue_agreement(kind="rationale", round_ids=[]).n == 0
    assert queue_agreement(kind="verdict").n == 0


def test_pair_agreement_is_cohens_kappa_for_each_two_reviewers(three_reviewers_on_four_tasks):
    round_, _ = three_reviewers_on_four_tasks
    pairs = {(p.reviewer_a, p.reviewer_b): p.agreement for p in pair_agreement(kind="rationale", round_ids=[round_.pk])}
    assert set(pairs) == {("ann", "bob"), ("ann", "cat"), ("bob", "cat")}
    assert (pairs["ann", "bob"].n, pairs["ann", "bob"].percent) == (4, 75.0)
    assert pairs["ann", "bob"].kappa == pytest.approx(0.5)  # p_e = (3*2 + 1*2) / 16
    assert pairs["ann", "cat"].percent == 25.0 and pairs["ann", "cat"].kappa == pytest.approx(0.0)
    assert pairs["bob", "cat"].percent == 25.0 and pairs["bob", "cat"].kappa == pytest.approx(0.0)


def test_each_reviewer_against_the_resolution(three_reviewers_on_four_tasks):
    round_, _ = three_reviewers_on_four_tasks
    by = {r.reviewer: r.agreement for r in resolution_agreement(kind="rationale", round_ids=[round_.pk])}
    assert by["ann"].percent == 75.0 and by["ann"].kappa == pytest.approx(0.5)
    assert by["bob"].percent == 100.0 and by["bob"].kappa == pytest.approx(1.0)
    assert by["cat"].percent == 25.0 and by["cat"].kappa == pytest.approx(0.0)
    assert resolution_agreement(kind="rationale")[0].reviewer == "ann"  # most votes (5, one in the other round)


def _judgment(round_, category, verdict="hard", label=None):
    instruction = InstructionFactory(task_category=category)
    teacher, student = (
        Response.objects.create(instruction=instruction, role=role, round=round_, model="m", text="answer")
        for role in ("teacher", "student")
    )
    if label is not None:
        TaskLabel.objects.create(experiment=round_.experiment, instruction=instruction, category=label, source="llm")
    judgment = Judgment.objects.create(
        instruction=instruction, round=round_, teacher_response=teacher, student_response=student, judge_model="j",
        verdict=verdict,
    )  # fmt: skip
    return ReviewTaskFactory(kind="verdict", round=round_, subject=judgment)


@pytest.mark.django_db
def test_judge_overturns_by_category_leave_out_auto_approve_and_other_rounds():
    round_, later = make_round(), None
    later = make_round(2, experiment=round_.experiment)
    alice = UserFactory(role=Role.REVIEWER)
    math = [_judgment(round_, "Math") for _ in range(4)]
    relabelled = _judgment(round_, "Math", label="Code Generation")  # the experiment's label counts
    blank = _judgment(round_, "")
    for task, decision in zip(math, ["accept", "flip", "invalid", "accept"], strict=True):
        review_decide(reviewer=alice, task_id=task.pk, decision=decision)
    review_decide(reviewer=alice, task_id=relabelled.pk, decision="flip")
    review_decide(reviewer=alice, task_id=blank.pk, decision="accept")
    _judgment(round_, "Math")  # undecided: not counted
    auto = _judgment(round_, "Math")
    review_tasks_auto_accept(task_ids=[auto.pk], reviewer=auto_reviewer())
    review_decide(reviewer=alice, task_id=_judgment(later, "Math").pk, decision="flip")
    rows = {r.category: r for r in judge_overturns(round_id=round_.pk)}
    assert set(rows) == {"Math", "Code Generation", "(no category)", "all"}
    assert (rows["Math"].reviewed, rows["Math"].confirmed, rows["Math"].flipped, rows["Math"].invalid) == (4, 2, 1, 1)
    assert rows["Math"].rate == pytest.approx(0.5)
    assert rows["Code Generation"].overturned == 1 and rows["(no category)"].rate == 0.0
    assert (rows["all"].reviewed, rows["all"].overturned) == (6, 3)
    assert [r.category for r in judge_overturns(round_id=later.pk)] == ["Math", "all"]
