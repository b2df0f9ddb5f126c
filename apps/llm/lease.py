"""One runner per endpoint: a lease row that the runner takes, renews while it works, and gives back.

Each statement is a single conditional UPDATE, atomic on PostgreSQL and SQLite alike. A lease left by a
killed worker simply expires, and the next runner takes it.
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from apps.llm.models import LLMRunnerLease


def lease_acquire(*, endpoint_id: int, owner: str, ttl_s: float) -> bool:
    LLMRunnerLease.objects.bulk_create([LLMRunnerLease(endpoint_id=endpoint_id)], ignore_conflicts=True)
    now = timezone.now()
    taken = (
        LLMRunnerLease.objects.filter(endpoint_id=endpoint_id)
        .filter(Q(owner="") | Q(owner=owner) | Q(expires_at__isnull=True) | Q(expires_at__lt=now))
        .update(owner=owner, expires_at=now + timedelta(seconds=ttl_s))
    )
    return taken == 1


def lease_renew(*, endpoint_id: int, owner: str, ttl_s: float) -> bool:
    """False when the lease was lost (it expired and another runner took it): stop at once."""
    return (
        LLMRunnerLease.objects.filter(endpoint_id=endpoint_id, owner=owner).update(
            expires_at=timezone.now() + timedelta(seconds=ttl_s)
        )
        == 1
    )


def lease_release(*, endpoint_id: int, owner: str) -> None:
    LLMRunnerLease.objects.filter(endpoint_id=endpoint_id, owner=owner).update(owner="", expires_at=None)


def lease_seconds_left(*, endpoint_id: int) -> float:
    lease = LLMRunnerLease.objects.filter(endpoint_id=endpoint_id).exclude(owner="").first()
    if lease is None or lease.expires_at is None:
        return 0.0
    return max(0.0, (lease.expires_at - timezone.now()).total_seconds())
