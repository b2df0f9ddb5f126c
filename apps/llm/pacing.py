"""When an endpoint's last run stopped sending, shared by every worker process (in the cache: Redis, or
the embedded mode's file cache), so that a new run's rate buckets start from what the last run may have
left instead of full (see workers.llm.ratelimit.start_level).

A run marks the time up to which it may still send: at its start and at each lease renewal, the time of
its next renewal (a runner killed in between sends nothing after it); when it ends, the moment it ended.

With the cache unreachable (Redis restarting) the mark is neither written nor read, and fails no run: a
new run then starts its buckets empty, as if the last run had only just stopped, so the limit still holds.
"""

import contextlib
import time

from django.core.cache import cache

from apps.core.enqueue import UNREACHABLE
from workers.llm.ratelimit import BURST_SECONDS


def _key(endpoint_id: int) -> str:
    return f"llm:sending-until:{endpoint_id}"


def sending_until(*, endpoint_id: int, until: float) -> None:
    """The endpoint's runner may send until `until` (wall-clock seconds, shared across machines)."""
    # Once the mark is a burst old, a new run may start with full buckets: the key need not outlive that.
    ttl = max(1, int(until - time.time() + BURST_SECONDS) + 1)
    with contextlib.suppress(*UNREACHABLE):
        cache.set(_key(endpoint_id), until, timeout=ttl)


def idle_seconds(*, endpoint_id: int) -> float | None:
    """Seconds since the endpoint's last run stopped sending; 0 while one may still send; None when no
    run sent within a burst's time."""
    try:
        until = cache.get(_key(endpoint_id))
    except UNREACHABLE:
        return 0.0
    return None if until is None else max(0.0, time.time() - float(until))
