"""Knobs for the gateway's runner. Each is a Django setting when present, else an environment variable of
the same name, else the default; the environment route lets a test start a worker with short leases
without touching settings."""

import os

from django.conf import settings

from workers.llm.retry import RetryPolicy


def _number(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        raw = os.environ.get(name, "")
        value = float(raw) if raw else default
    return float(value)


def lease_seconds() -> float:
    """How long a runner's claim on an endpoint lasts without renewal (a killed worker's claim expires)."""
    return _number("RETORT_LLM_LEASE_S", 30.0)


def window_factor() -> int:
    """Calls submitted ahead of the client, as a multiple of the endpoint's max concurrency."""
    return int(_number("RETORT_LLM_WINDOW_FACTOR", 4))


def retry_policy() -> RetryPolicy:
    return RetryPolicy(
        max_attempts=int(_number("RETORT_LLM_MAX_ATTEMPTS", 8)),
        base_delay_s=_number("RETORT_LLM_RETRY_BASE_S", 0.5),
        max_delay_s=_number("RETORT_LLM_RETRY_MAX_S", 30.0),
    )


def process_threshold() -> int:
    """Run the client in a child process when an endpoint allows at least 64 concurrent calls and has at
    least this many pending: at hundreds of calls a second its own interpreter keeps the event loop clear
    of the runner's database work, which is worth the second or so the child takes to start.
    0: always; -1: never."""
    return int(_number("RETORT_LLM_PROCESS_THRESHOLD", 1000))


PROCESS_MIN_CONCURRENCY = 64


def offline_chunk() -> int:
    return int(_number("RETORT_LLM_OFFLINE_CHUNK", 256))
