"""Skipping in the focus view: the reviewer leaves a task for later and claims the next one he has not
skipped. `review_claim_next` (apps.reviews.claiming) has no way to pass over tasks, so this claims the
same way, with the same building blocks (candidates locked with skip_locked, slots re-counted under the
lock by `take_slot`), leaving out the skipped ids; with nothing to leave out the view calls
`review_claim_next` itself."""

from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.core.roles import Role, require_role
from apps.reviews.claiming import CLAIMABLE, DEFAULT_LEASE_S, MAX_LEASE_S, live, lock_task, queue_scope, take_slot
from apps.reviews.claiming import review_claim_next as claim_next
from apps.reviews.kinds import ReviewError
from apps.reviews.models import ReviewAssignment, ReviewTask

_TRIES = 20
A = ReviewAssignment.Status


def review_claim_next_skipping(
    *,
    reviewer,
    kind: str,
    skipped: Iterable[int] = (),
    round_ids: Iterable[int] | None = None,
    experiment_id: int | None = None,
    lease_s: float = DEFAULT_LEASE_S,
) -> ReviewTask | None:
    """Like `review_claim_next`, passing over the `skipped` task ids (a task he holds among them too)."""
    skipped = sorted({int(pk) for pk in skipped})
    round_ids = None if round_ids is None else list(round_ids)
    if not skipped:
        return claim_next(
            reviewer=reviewer, kind=kind, round_ids=round_ids, experiment_id=experiment_id, lease_s=lease_s
        )
    require_role(reviewer, Role.REVIEWER)
    if not 0 < lease_s <= MAX_LEASE_S:
        raise ReviewError(f"A lease is from 1 second to {MAX_LEASE_S} seconds, got {lease_s!r}.")
    lease = timedelta(seconds=lease_s)
    with transaction.atomic():
        now = timezone.now()
        scope = queue_scope(ReviewTask.objects.all(), kind=kind, round_ids=round_ids, experiment_id=experiment_id)
        claimable = scope.filter(status__in=CLAIMABLE).exclude(pk__in=skipped)
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
            if take_slot(task, reviewer, timezone.now(), lease) is not None:
                return task
            lost.append(task.pk)
        return None
