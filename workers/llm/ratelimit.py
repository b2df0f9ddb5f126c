"""Client-side limits for one endpoint: concurrent requests, requests per minute, tokens per minute, and a
shared cool-down after the provider says "slow down" (429 + Retry-After).

Staying under the provider's limits is cheaper than being told off: a burst of 429s costs latency for
every request in flight, and some providers lengthen the penalty for clients that keep hammering.
"""

import asyncio
import time

# A bucket holds this many seconds' worth of its rate, so a batch can start with a short burst instead of
# trickling, without ever exceeding the per-minute figure over any whole minute by more than the burst.
BURST_SECONDS = 10.0


def start_level(capacity: float, rate: float, idle_s: float | None) -> float:
    """What a new bucket holds when the endpoint's last run stopped sending `idle_s` seconds ago (None:
    long ago, or never). It assumes that run left its bucket empty and lets it refill since, so a run
    after a run (the next stage's calls, another experiment's, a run on another worker) cannot add a
    fresh burst to the one just spent: the endpoint as a whole stays inside one bucket."""
    if idle_s is None:
        return capacity
    return min(capacity, max(0.0, idle_s) * rate)


class TokenBucket:
    def __init__(
        self,
        per_minute: float,
        *,
        burst_seconds: float = BURST_SECONDS,
        idle_s: float | None = None,
        clock=time.monotonic,
    ):
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = start_level(self.capacity, self.rate, idle_s)
        self._clock = clock
        self._stamp = clock()
        self._lock = asyncio.Lock()  # FIFO: waiters are served in arrival order

    def _refill(self) -> None:
        now = self._clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self, amount: float) -> float:
        """Seconds until `amount` can be taken (0 if now). An amount above the capacity waits for a full
        bucket and then drives the level negative, so one huge request is slow but never stuck."""
        self._refill()
        needed = min(amount, self.capacity)
        return 0.0 if self.level >= needed else (needed - self.level) / self.rate

    async def take(self, amount: float = 1.0) -> None:
        async with self._lock:
            while (wait := self.wait_time(amount)) > 0:
                await asyncio.sleep(wait)
            self.level -= amount


class EndpointLimiter:
    def __init__(
        self,
        max_concurrency: int,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        *,
        idle_s: float | None = None,
        clock=time.monotonic,
    ):
        self._slots = asyncio.Semaphore(max(1, max_concurrency))
        self.requests = TokenBucket(requests_per_minute, idle_s=idle_s, clock=clock) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, idle_s=idle_s, clock=clock) if tokens_per_minute else None
        self._clock = clock
        self.cooldown_until = 0.0

    def cool_down(self, seconds: float) -> None:
        """Hold every new request on this endpoint for `seconds` (the provider's Retry-After)."""
        self.cooldown_until = max(self.cooldown_until, self._clock() + seconds)

    async def _wait_cooldown(self) -> None:
        while (remaining := self.cooldown_until - self._clock()) > 0:
            await asyncio.sleep(remaining)

    async def acquire(self, tokens: int = 0) -> None:
        await self._wait_cooldown()
        if self.requests is not None:
            await self.requests.take(1)
        if self.tokens is not None and tokens:
            await self.tokens.take(tokens)
        await self._slots.acquire()
        # A 429 may have arrived while this request queued for a slot: honour it before sending.
        if self.cooldown_until > self._clock():
            self._slots.release()
            await self.acquire(0)

    def release(self) -> None:
        self._slots.release()
