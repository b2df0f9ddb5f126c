"""Votes, overlap and resolution: agreeing votes decide a task, disagreeing ones wait for an operator; a
reviewer's newer verdict replaces his vote; bulk votes lock in id order and say why they skipped; drafts;
the engine's bulk accept; tasks that become done are announced after commit."""

import pytest
from django.core.exceptions import PermissionDenied

from apps.core.roles import Role
from apps.reviews.claiming import review_claim_next
from apps.reviews.kinds import ReviewError
from apps.reviews.models import ReviewAssignment, ReviewDraft, ReviewTask, ReviewVerdict
from apps.reviews.services import (
    review_bulk_decide,
    review_decide,
    review_draft_discard,
    review_draft_save,
    review_resolve,
    review_tasks_auto_accept,
)
from tests.apps.reviews.conftest import make_round, reviewer, tasks
from tests.factories import ReviewTaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_one_vote_decides_a_task_without_overlap_and_is_announced_after_commit(
    announced, django_capture_on_commit_callbacks
):
    round_ = make_round()
    task = ReviewTaskFactory(round=round_, kind="rewrite")
    alice = reviewer()
    with django_capture_on_commit_callbacks(execute=True):
        done = review_decide(reviewer=alice, task_id=task.pk, decision="edit", edited_text=" Shorter. ", note="tone")
        assert announced == []  # nothing is said before the transaction commits
    assert (done.status, done.decision, done.edited_text, done.note, done.resolved_by) == (
        "done", "edit", "Shorter.", "tone", alice,
    )  # fmt: skip
    assert announced == [([task.pk], [round_.pk], ["rewrite"])]
    vote = ReviewAssignment.objects.get(task=task)
    assert (vote.reviewer, vote.status, vote.verdict.decision) == (alice, "submitted", "edit")
    with pytest.raises(ReviewError, match=f"review task #{task.pk} is already decided"):
        review_decide(reviewer=alice, task_id=task.pk, decision="accept")


def test_agreeing_votes_of_the_overlap_decide_it_and_disagreeing_ones_wait_for_an_operator(
    announced, django_capture_on_commit_callbacks
):
    agreed, split = tasks(2, required_reviews=2)
    alice, bob = reviewer(), reviewer()
    with django_capture_on_commit_callbacks(execute=True):
        assert review_decide(reviewer=alice, task_id=agreed.pk, decision="reject", note="off topic").status == "claimed"
        assert review_decide(reviewer=bob, task_id=agreed.pk, decision="reject", note="duplicate").status == "done"
        review_decide(reviewer=alice, task_id=split.pk, decision="accept")
        assert review_decide(reviewer=bob, task_id=split.pk, decision="reject").status == "conflict"
    agreed.refresh_from_db()
    assert (agreed.decision, agreed.note) == ("reject", "off topic\nduplicate")
    assert announced == [([agreed.pk], [], ["generated"])]
    # A newcomer cannot vote on a conflict; the reviewers cannot resolve it; an operator does.
    with pytest.raises(ReviewError, match="waits for an operator"):
        review_decide(reviewer=reviewer(), task_id=split.pk, decision="accept")
    with pytest.raises(PermissionDenied, match="operator role"):
        review_resolve(by=alice, task_id=split.pk, decision="accept")
    operator = UserFactory(role=Role.OPERATOR)
    with django_capture_on_commit_callbacks(execute=True):
        settled = review_resolve(by=operator, task_id=split.pk, decision="edit", edited_text="Fixed.", note="merged")
    assert (settled.status, settled.decision, settled.edited_text, settled.resolved_by) == (
        "done", "edit", "Fixed.", operator,
    )  # fmt: skip
    assert announced[-1] == ([split.pk], [], ["generated"])
    with pytest.raises(ReviewError, match="only a conflict is resolved"):
        review_resolve(by=operator, task_id=agreed.pk, decision="accept")


def test_edits_agree_only_when_their_texts_do():
    task = ReviewTaskFactory(required_reviews=2)
    review_decide(reviewer=reviewer(), task_id=task.pk, decision="edit", edited_text="One.")
    assert review_decide(reviewer=reviewer(), task_id=task.pk, decision="edit", edited_text="Two.").status == "conflict"


def test_a_second_verdict_replaces_the_reviewers_vote_and_the_first_stays_in_the_history():
    task = ReviewTaskFactory(required_reviews=2)
    alice, bob = reviewer(), reviewer()
    review_decide(reviewer=alice, task_id=task.pk, decision="accept")
    review_decide(reviewer=alice, task_id=task.pk, decision="reject")
    assert ReviewVerdict.objects.filter(task=task, reviewer=alice).count() == 2
    assert ReviewAssignment.objects.get(task=task, reviewer=alice).verdict.decision == "reject"
    assert review_decide(reviewer=bob, task_id=task.pk, decision="reject").status == "done"


def test_a_reviewer_changing_his_vote_can_end_a_conflict():
    task = ReviewTaskFactory(required_reviews=2)
    alice, bob = reviewer(), reviewer()
    review_decide(reviewer=alice, task_id=task.pk, decision="accept")
    assert review_decide(reviewer=bob, task_id=task.pk, decision="reject").status == "conflict"
    assert review_decide(reviewer=bob, task_id=task.pk, decision="accept").status == "done"


def test_a_free_task_is_taken_when_decided_and_a_held_one_is_not():
    free, held = tasks(2, kind="verdict")
    alice, bob = reviewer(), reviewer()
    assert review_decide(reviewer=alice, task_id=free.pk, decision="flip").decision == "flip"
    assert review_claim_next(reviewer=alice, kind="verdict") == held
    with pytest.raises(ReviewError, match="held by other reviewers"):
        review_decide(reviewer=bob, task_id=held.pk, decision="accept")
    with pytest.raises(ReviewError, match="'reject' is not allowed on review task"):
        review_decide(reviewer=alice, task_id=held.pk, decision="reject")
    with pytest.raises(PermissionDenied):
        review_decide(reviewer=UserFactory(role=Role.VIEWER), task_id=held.pk, decision="accept")


def test_bulk_decide_votes_on_what_it_can_and_names_the_reason_for_the_rest(
    announced, django_capture_on_commit_callbacks
):
    generated = tasks(3)
    verdict = ReviewTaskFactory(kind="verdict")
    decided = ReviewTaskFactory()
    review_decide(reviewer=reviewer(), task_id=decided.pk, decision="accept")
    held = ReviewTaskFactory()
    review_claim_next(reviewer=reviewer(), kind="generated")  # takes generated[0]
    alice = reviewer()
    ids = [g.pk for g in generated] + [verdict.pk, decided.pk, held.pk, 999999]
    with django_capture_on_commit_callbacks(execute=True):
        outcome = review_bulk_decide(reviewer=alice, task_ids=ids, decision="reject")
    assert (outcome.decided, outcome.done) == (3, 3)
    reasons = dict(outcome.skipped)
    assert set(reasons) == {generated[0].pk, verdict.pk, decided.pk, 999999}
    assert "held by other reviewers" in reasons[generated[0].pk]
    assert "not allowed" in reasons[verdict.pk] and "already decided" in reasons[decided.pk]
    assert reasons[999999] == "There is no review task #999999."
    assert announced[-1][0] == sorted([generated[1].pk, generated[2].pk, held.pk])
    assert ReviewTask.objects.get(pk=held.pk).decision == "reject"
    with pytest.raises(ReviewError, match="at most 1000 tasks"):
        review_bulk_decide(reviewer=alice, task_ids=range(1001), decision="reject")


def test_a_draft_is_kept_replaced_discarded_and_dropped_by_the_vote():
    task = ReviewTaskFactory(kind="rationale")
    alice = reviewer()
    review_draft_save(reviewer=alice, task_id=task.pk, decision="edit", edited_text="Half done")
    draft = review_draft_save(reviewer=alice, task_id=task.pk, decision="edit", edited_text="Nearly done")
    assert ReviewDraft.objects.filter(task=task).count() == 1 and draft.edited_text == "Nearly done"
    assert review_draft_discard(reviewer=alice, task_id=task.pk) is True
    assert review_draft_discard(reviewer=alice, task_id=task.pk) is False
    with pytest.raises(ReviewError, match="'flip' is not allowed"):
        review_draft_save(reviewer=alice, task_id=task.pk, decision="flip")
    review_draft_save(reviewer=alice, task_id=task.pk, note="thinking")
    review_decide(reviewer=alice, task_id=task.pk, decision="accept")
    assert not ReviewDraft.objects.exists()
    with pytest.raises(ReviewError, match="already decided"):
        review_draft_save(reviewer=alice, task_id=task.pk, note="late")


def test_auto_accept_writes_a_verdict_and_the_resolution_and_leaves_unparsable_replies(
    announced, django_capture_on_commit_callbacks
):
    round_ = make_round()
    gate = tasks(3, round=round_, required_reviews=2)
    reply = ReviewTaskFactory(kind="invalid_reply", round=round_)
    robot = UserFactory(username="auto-approve")
    review_claim_next(reviewer=reviewer(), kind="generated", round_ids=[round_.pk])
    with django_capture_on_commit_callbacks(execute=True):
        count = review_tasks_auto_accept(task_ids=[t.pk for t in gate] + [reply.pk], reviewer=robot, note="auto")
    assert count == 3
    for task in ReviewTask.objects.filter(pk__in=[t.pk for t in gate]):
        assert (task.status, task.decision, task.resolved_by, task.note) == ("done", "accept", robot, "auto")
        assert ReviewVerdict.objects.get(task=task).reviewer == robot
    assert not ReviewAssignment.objects.filter(status="active").exists()
    assert ReviewTask.objects.get(pk=reply.pk).status == "open"
    assert announced == [(sorted(t.pk for t in gate), [round_.pk], ["generated"])]
    assert review_tasks_auto_accept(task_ids=[t.pk for t in gate], reviewer=robot) == 0
