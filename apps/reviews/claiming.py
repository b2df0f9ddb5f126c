"""Who reviews what next: claiming a task with a lease, releasing it, and the slots a task has left.

The strategy follows Label Studio's next_task idea in our own code: the highest-priority claimable task
of a queue that still has a free review slot and none of this reviewer's, locked with
`select_for_update(skip_locked=True)` so that concurrent reviewers pass over each other's rows instead of
waiting, then re-counted under the lock before the slot is taken. A slot is taken by a submitted vote or
an active assignment whose lease has not expired; an expired lease frees it.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.roles import Role, require_role
from apps.reviews.kinds import ReviewError, check_kind
from apps.reviews.models import ReviewAssignment, ReviewTask

DEFAULT_LEASE_S = 600  # ours: ten minutes on an item; claiming again renews it
MAX_LEASE_S = 24 * 3600
CLAIMABLE = (ReviewTask.Status.OPEN, ReviewTask.Status.CLAIMED)
_TRIES = 20  # candidates re-checked under their lock before giving up (each one lost to a racing reviewer)
A = ReviewAssignment.Status


def live(now: datetime) -> Q:
    """Assignments that take a slot: a submitted vote, or an active claim whose lease has not expired."""
    return Q(status=A.SUBMITTED) | Q(status=A.ACTIVE, lease_expires_at__gt=now)


def queue_scope(
    qs: QuerySet[ReviewTask], *, kind: str, round_ids: Iterable[int] | None = None, experiment_id: int | None = None
) -> QuerySet[ReviewTask]:
    """A queue: the tasks of one kind, optionally of some rounds or of one experiment's rounds."""
    qs = qs.filter(kind=check_kind(kind))
    if round_ids is not None:
        qs = qs.filter(round_id__in=[int(pk) for pk in round_ids])
    if experiment_id is not None:
        qs = qs.filter(round__experiment_id=experiment_id)
    return qs


def lock_task(task_id: int) -> ReviewTask:
    task = ReviewTask.objects.select_for_update().filter(pk=task_id).first()
    if task is None:
        raise ReviewError(f"There is no review task #{task_id}.")
    return task


def taken_slots(task: ReviewTask, now: datetime, *, besides=None) -> int:
    qs = ReviewAssignment.objects.filter(task=task).filter(live(now))
    if besides is not None:
        qs = qs.exclude(reviewer=besides)
    return qs.count()


def holds(assignment: ReviewAssignment | None, now: datetime) -> bool:
    """The reviewer's assignment takes one of the task's slots."""
    if assignment is None:
        return False
    if assignment.status == A.SUBMITTED:
        return True
    return (
        assignment.status == A.ACTIVE and assignment.lease_expires_at is not None and assignment.lease_expires_at > now
    )


def refresh_status(task: ReviewTask, now: datetime) -> None:
    """open <-> claimed by whether anyone takes a slot; conflict and done are left to the services."""
    if task.status not in CLAIMABLE:
        return
    status = ReviewTask.Status.CLAIMED if taken_slots(task, now) else ReviewTask.Status.OPEN
    if status != task.status:
        task.status = status
        task.save(update_fields=["status", "updated_at"])


def _lease(lease_s: float) -> timedelta:
    if not 0 < lease_s <= MAX_LEASE_S:
        raise ReviewError(f"A lease is from 1 second to {MAX_LEASE_S} seconds, got {lease_s!r}.")
    return timedelta(seconds=lease_s)


def take_slot(task: ReviewTask, reviewer, now: datetime, lease: timedelta) -> ReviewAssignment | None:
    """Give the reviewer a slot on the locked task, or None when it has none left for him."""
    mine = ReviewAssignment.objects.filter(task=task, reviewer=reviewer).first()
    if holds(mine, now) or taken_slots(task, now, besides=reviewer) >= task.required_reviews:
        return None
    if mine is None:
        mine = ReviewAssignment(task=task, reviewer=reviewer)
    mine.status, mine.lease_expires_at, mine.verdict, mine.submitted_at = A.ACTIVE, now + lease, None, None
    mine.save()
    if task.status == ReviewTask.Status.OPEN:
        task.status = ReviewTask.Status.CLAIMED
        task.save(update_fields=["status", "updated_at"])
    return mine


def review_claim_next(
    *,
    reviewer,
    kind: str,
    round_ids: Iterable[int] | None = None,
    experiment_id: int | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    exclude_ids: Iterable[int] = (),
) -> ReviewTask | None:
    """The task this reviewer works on next in a queue, held for `lease_s` seconds; None when the queue
    has nothing left for him. While he holds an unexpired claim in the queue, that task again (its lease
    renewed), so reloading the page or a second tab does not take a second slot. `exclude_ids` are passed
    over, a held one among them too (the focus view's skipped tasks)."""
    require_role(reviewer, Role.REVIEWER)
    lease = _lease(lease_s)
    round_ids = None if round_ids is None else list(round_ids)
    excluded = sorted({int(pk) for pk in exclude_ids})
    with transaction.atomic():
        now = timezone.now()
        scope = queue_scope(ReviewTask.objects.all(), kind=kind, round_ids=round_ids, experiment_id=experiment_id)
        claimable = scope.filter(status__in=CLAIMABLE)
        if excluded:
            claimable = claimable.exclude(pk__in=excluded)
        held = (
            ReviewAssignment.objects.filter(
                reviewer=reviewer, status=A.ACTIVE, lease_expires_at__gt=now, task__in=claimable.values("pk")
            )
            .order_by("pk")
            .first()
        )
        if held is not None:
            task = lock_task(held.task_id)
            ReviewAssignment.objects.filter(pk=held.pk).update(lease_expires_at=now + lease, updated_at=now)
            return task
        taken = (
            ReviewAssignment.objects.filter(task=OuterRef("pk"))
            .filter(live(now))
            .order_by()
            .values("task")
            .annotate(n=Count("pk"))
            .values("n")
        )
        mine = ReviewAssignment.objects.filter(task=OuterRef("pk"), reviewer=reviewer).filter(live(now))
        candidates = (
            claimable.annotate(taken=Coalesce(Subquery(taken, output_field=IntegerField()), Value(0)))
            .filter(taken__lt=F("required_reviews"))
            .exclude(Exists(mine))
            .order_by("-priority", "pk")
        )
        lost: list[int] = []
        for _ in range(_TRIES):
            task = candidates.exclude(pk__in=lost).select_for_update(skip_locked=True, of=("self",)).first()
            if task is None:
                return None
            # Re-counted under the row lock: a reviewer who committed a claim after this statement's
            # snapshot is seen now.
            if take_slot(task, reviewer, timezone.now(), lease) is not None:
                return task
            lost.append(task.pk)
        return None


def review_release(*, reviewer, task_id: int) -> bool:
    """The reviewer leaves a task he holds (closing the page, skipping it): his slot is free again. False
    when he held none. A vote already given stays."""
    require_role(reviewer, Role.REVIEWER)
    with transaction.atomic():
        task = lock_task(task_id)
        now = timezone.now()
        released = ReviewAssignment.objects.filter(task=task, reviewer=reviewer, status=A.ACTIVE).update(
            status=A.RELEASED, lease_expires_at=None, updated_at=now
        )
        refresh_status(task, now)
        return bool(released)
