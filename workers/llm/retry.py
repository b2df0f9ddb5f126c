"""When to retry a failed call and how long to wait first.

Transient: 408, 409, 425, 429, any 5xx, timeouts and dropped connections. Everything else in 4xx means
the request or the credentials are wrong, and sending it again would fail the same way (and may cost
money), so it is reported at once.
"""

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES or status >= 500


def parse_retry_after(headers, *, now: datetime | None = None) -> float | None:
    """Seconds the server asked us to wait, from `retry-after-ms` or `Retry-After` (seconds or a date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    # A provider asking for more than this is out of quota, not briefly busy: the call fails instead
    # of holding a worker for hours.
    max_retry_after_s: float = 600.0

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Wait before attempt `attempt + 1`. Exponential backoff with full jitter spreads retries out so a
        crowd of failed requests does not come back at the same instant; a Retry-After is a floor."""
        rng = rng or random
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** max(0, attempt - 1)))
        backoff = rng.uniform(0, ceiling)
        if retry_after is None:
            return backoff
        # Honour the server's figure, then add a little spread (up to 10 %) so waiters do not stampede.
        return retry_after + rng.uniform(0, 0.1 * retry_after + 0.01)
