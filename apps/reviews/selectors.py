"""Reads for the review queues: a task's votes and holders, a reviewer's draft and held task, queue counts."""

from collections.abc import Iterable

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.reviews.claiming import CLAIMABLE, live, queue_scope
from apps.reviews.models import ReviewAssignment, ReviewDraft, ReviewTask


def review_task_votes(*, task_id: int) -> list[ReviewAssignment]:
    """The votes that count on a task (each reviewer's latest verdict), oldest first."""
    return list(
        ReviewAssignment.objects.filter(task_id=task_id, status=ReviewAssignment.Status.SUBMITTED)
        .select_related("verdict", "reviewer")
        .order_by("submitted_at", "pk")
    )


def review_task_holders(*, task_id: int) -> list[ReviewAssignment]:
    """Who takes a slot on the task now: submitted votes and unexpired claims."""
    return list(
        ReviewAssignment.objects.filter(task_id=task_id)
        .filter(live(timezone.now()))
        .select_related("reviewer")
        .order_by("pk")
    )


def review_draft_for(*, reviewer, task_id: int) -> ReviewDraft | None:
    return ReviewDraft.objects.filter(task_id=task_id, reviewer=reviewer).first()


def review_held_task(*, reviewer, kind: str, round_ids: Iterable[int] | None = None) -> ReviewTask | None:
    """The task of a queue this reviewer holds under an unexpired lease, if any."""
    now = timezone.now()
    tasks = queue_scope(ReviewTask.objects.filter(status__in=CLAIMABLE), kind=kind, round_ids=round_ids)
    held = ReviewAssignment.objects.filter(
        reviewer=reviewer, status=ReviewAssignment.Status.ACTIVE, lease_expires_at__gt=now, task__in=tasks.values("pk")
    )
    return ReviewTask.objects.filter(pk__in=held.values("task_id")).order_by("pk").first()


def review_queue_counts(*, kind: str, round_ids: Iterable[int] | None = None) -> dict[str, int]:
    """Tasks of a queue by status (open, claimed, conflict, done) in one aggregate."""
    qs: QuerySet = queue_scope(ReviewTask.objects.all(), kind=kind, round_ids=round_ids)
    statuses = [s for s, _ in ReviewTask.Status.choices]
    return qs.aggregate(**{s: Count("pk", filter=Q(status=s)) for s in statuses})
