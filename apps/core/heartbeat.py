"""Heartbeats of running jobs, kept in the shared cache.

A job's heartbeat is written from inside its own long database transaction, where a row update would
stay invisible to everyone else until commit; the cache is outside that transaction. A heartbeat carries
the job's live progress for the progress bar, and a fresh one lets recovery skip a job cheaply. It is
only a hint of life: a cache can be restarted or evict keys, so a missing heartbeat never condemns a job
on its own (the job's row lock decides; see apps.core.recovery). So a cache that is down or restarting
fails no job and no page: a beat is skipped, and a read finds none.
"""

import contextlib
import logging
import os
import socket
import time

from django.core.cache import cache

from apps.core.enqueue import UNREACHABLE

log = logging.getLogger(__name__)
WARN_EVERY_S = 60  # an import beats many times a second: one warning a minute says enough
_warned_at = 0.0

TTL_S = 24 * 3600


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _key(kind: str, job_id: int) -> str:
    return f"retort:heartbeat:{kind}:{job_id}"


def heartbeat_touch(kind: str, job_id: int, **progress) -> None:
    try:
        cache.set(_key(kind, job_id), {**progress, "at": time.time()}, TTL_S)
    except UNREACHABLE as exc:
        global _warned_at
        if time.monotonic() - _warned_at > WARN_EVERY_S:
            _warned_at = time.monotonic()
            log.warning("No heartbeat for %s job %s: the cache is unreachable (%s)", kind, job_id, exc)


def heartbeat_get(kind: str, job_id: int) -> dict | None:
    try:
        return cache.get(_key(kind, job_id))
    except UNREACHABLE:
        return None


def heartbeat_age_s(kind: str, job_id: int) -> float | None:
    beat = heartbeat_get(kind, job_id)
    return None if beat is None else time.time() - beat["at"]


def heartbeat_clear(kind: str, job_id: int) -> None:
    with contextlib.suppress(*UNREACHABLE):
        cache.delete(_key(kind, job_id))
