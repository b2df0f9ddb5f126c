"""Claiming the next task of a queue with a lease: priority then id, one slot per reviewer, the held task
again while its lease runs, an expired lease frees the slot, release on leave; with threads on PostgreSQL,
no slot is ever held twice."""

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.utils import timezone

from apps.core.roles import Role
from apps.reviews.claiming import review_claim_next, review_release
from apps.reviews.kinds import ReviewError
from apps.reviews.models import ReviewAssignment, ReviewTask, ReviewVerdict
from apps.reviews.services import review_decide
from tests.apps.reviews.conftest import make_round, reviewer, tasks
from tests.factories import ReviewTaskFactory, UserFactory

pytestmark = pytest.mark.django_db


def _expire(task, user):
    ReviewAssignment.objects.filter(task=task, reviewer=user).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_the_next_task_is_the_highest_priority_then_the_lowest_id_and_each_reviewer_gets_his_own():
    low, high_late, high_early = ReviewTaskFactory(priority=0), ReviewTaskFactory(priority=2), None
    high_early = ReviewTaskFactory(priority=2)
    assert high_late.pk < high_early.pk
    alice, bob, carol, dave = reviewer(), reviewer(), reviewer(), reviewer()
    assert review_claim_next(reviewer=alice, kind="generated") == high_late
    assert review_claim_next(reviewer=bob, kind="generated") == high_early
    assert review_claim_next(reviewer=carol, kind="generated") == low
    assert review_claim_next(reviewer=dave, kind="generated") is None
    assert set(ReviewTask.objects.values_list("status", flat=True)) == {"claimed"}
    assert review_claim_next(reviewer=dave, kind="verdict") is None  # another queue


def test_claiming_again_returns_the_held_task_and_renews_its_lease():
    first, _ = tasks(2)
    alice = reviewer()
    assert review_claim_next(reviewer=alice, kind="generated", lease_s=60) == first
    before = ReviewAssignment.objects.get(task=first, reviewer=alice).lease_expires_at
    assert review_claim_next(reviewer=alice, kind="generated", lease_s=600) == first
    after = ReviewAssignment.objects.get(task=first, reviewer=alice).lease_expires_at
    assert after > before + timedelta(seconds=500)
    assert ReviewAssignment.objects.filter(reviewer=alice).count() == 1


def test_an_expired_lease_frees_the_slot_and_its_holder_can_no_longer_decide_when_it_was_taken():
    [task] = tasks(1)
    alice, bob = reviewer(), reviewer()
    assert review_claim_next(reviewer=alice, kind="generated") == task
    assert review_claim_next(reviewer=bob, kind="generated") is None
    _expire(task, alice)
    assert review_claim_next(reviewer=bob, kind="generated") == task
    with pytest.raises(ReviewError, match=f"review task #{task.pk} is held by other reviewers \\(1 of 1\\)"):
        review_decide(reviewer=alice, task_id=task.pk, decision="accept")
    assert review_decide(reviewer=bob, task_id=task.pk, decision="accept").status == "done"


def test_an_expired_lease_nobody_took_still_lets_its_holder_decide():
    [task] = tasks(1)
    alice = reviewer()
    review_claim_next(reviewer=alice, kind="generated")
    _expire(task, alice)
    assert review_decide(reviewer=alice, task_id=task.pk, decision="reject").decision == "reject"


def test_release_on_leave_frees_the_slot_and_reopens_the_task():
    [task] = tasks(1)
    alice, bob = reviewer(), reviewer()
    review_claim_next(reviewer=alice, kind="generated")
    assert review_release(reviewer=alice, task_id=task.pk) is True
    task.refresh_from_db()
    assert task.status == "open"
    assert review_release(reviewer=alice, task_id=task.pk) is False
    assert review_claim_next(reviewer=bob, kind="generated") == task
    with pytest.raises(ReviewError, match="There is no review task #999999"):
        review_release(reviewer=bob, task_id=999999)


def test_with_overlap_each_of_k_reviewers_holds_one_slot_and_never_two():
    shared, other = tasks(2, required_reviews=2)
    alice, bob, carol = reviewer(), reviewer(), reviewer()
    assert review_claim_next(reviewer=alice, kind="generated") == shared
    assert review_claim_next(reviewer=bob, kind="generated") == shared
    assert review_claim_next(reviewer=carol, kind="generated") == other
    review_decide(reviewer=alice, task_id=shared.pk, decision="accept")
    # A reviewer who voted is not offered the task again; his next claim is the other task.
    assert review_claim_next(reviewer=alice, kind="generated") == other
    assert review_claim_next(reviewer=reviewer(), kind="generated") is None
    assert ReviewAssignment.objects.filter(task=shared).count() == 2


def test_decided_and_conflicted_tasks_are_not_claimed():
    done, conflict, free = tasks(3)
    ReviewTask.objects.filter(pk=done.pk).update(status="done", decision="accept")
    ReviewTask.objects.filter(pk=conflict.pk).update(status="conflict")
    assert review_claim_next(reviewer=reviewer(), kind="generated") == free


def test_a_queue_is_scoped_by_rounds_or_by_experiment():
    first, second = make_round(), make_round()
    later = make_round(2, experiment=first.experiment)
    in_first, in_second, in_later = (
        ReviewTaskFactory(round=r, priority=p) for r, p in ((first, 0), (second, 5), (later, 1))
    )
    alice = reviewer()
    assert review_claim_next(reviewer=alice, kind="generated", round_ids=[first.pk]) == in_first
    bob = reviewer()
    assert review_claim_next(reviewer=bob, kind="generated", experiment_id=first.experiment_id) == in_later
    assert review_claim_next(reviewer=reviewer(), kind="generated") == in_second


def test_the_same_subject_in_two_rounds_is_two_tasks_and_outside_rounds_one():
    first, second = make_round(), make_round()
    one = ReviewTaskFactory(round=first)
    two = ReviewTaskFactory(round=second, subject=one.subject)
    assert one.pk != two.pk and (one.subject_id, one.subject_type) == (two.subject_id, two.subject_type)
    loose = ReviewTaskFactory(round=None, subject=one.subject)
    made = ReviewTask.objects.bulk_create(
        [
            ReviewTask(kind="generated", round=None, subject_type=loose.subject_type, subject_id=loose.subject_id),
            ReviewTask(kind="generated", round=first, subject_type=one.subject_type, subject_id=one.subject_id),
        ],
        ignore_conflicts=True,
    )
    assert len(made) == 2 and ReviewTask.objects.count() == 3


def test_claiming_needs_the_reviewer_role_and_a_sane_lease():
    tasks(1)
    with pytest.raises(PermissionDenied, match="reviewer role"):
        review_claim_next(reviewer=UserFactory(role=Role.VIEWER), kind="generated")
    with pytest.raises(ReviewError, match="A lease is from 1 second"):
        review_claim_next(reviewer=reviewer(), kind="generated", lease_s=0)
    with pytest.raises(ReviewError, match="Unknown review kind"):
        review_claim_next(reviewer=reviewer(), kind="nonsense")


needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="skip_locked row locks need PostgreSQL; SQLite serialises every writer, so there is no race to test",
)


def _in_threads(n: int, work) -> list:
    """Run work(i) in n threads released at once; each one's result or the exception it raised."""
    barrier, results = threading.Barrier(n), [None] * n

    def body(i):
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - the test looks at what each thread got
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@needs_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("overlap", [1, 2])
def test_reviewers_racing_through_a_queue_never_hold_the_same_slot(overlap):
    """Eight reviewers claim and decide until the queue has nothing left for them: every task ends with
    exactly `overlap` votes by different reviewers, and no claim or vote was refused for a taken slot."""
    queue = tasks(40, required_reviews=overlap)
    people = [reviewer() for _ in range(8)]
    held_twice = []

    def work(i):
        me, got = people[i], []
        while (task := review_claim_next(reviewer=me, kind="generated")) is not None:
            holders = ReviewAssignment.objects.filter(task=task, status__in=["active", "submitted"]).count()
            if holders > overlap:
                held_twice.append(task.pk)
            review_decide(reviewer=me, task_id=task.pk, decision="accept")
            got.append(task.pk)
        return got

    results = _in_threads(len(people), work)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert held_twice == []
    claimed = [pk for got in results for pk in got]
    assert len(claimed) == len(queue) * overlap
    for got in results:
        assert len(got) == len(set(got))  # nobody was given one task twice
    assert set(ReviewTask.objects.values_list("status", flat=True)) == {"done"}
    assert ReviewVerdict.objects.count() == len(queue) * overlap
    per_task = {}
    for task_id, reviewer_id in ReviewVerdict.objects.values_list("task_id", "reviewer_id"):
        per_task.setdefault(task_id, set()).add(reviewer_id)
    assert all(len(ids) == overlap for ids in per_task.values()) and len(per_task) == len(queue)
