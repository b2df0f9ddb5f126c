"""Token buckets and the endpoint limiter, on a fake clock."""

import asyncio

from workers.llm.ratelimit import EndpointLimiter, TokenBucket
from workers.llm.sync import run_sync


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_bucket_allows_a_burst_then_refills_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(60, burst_seconds=5, clock=clock)  # 1 per second, 5 in a burst
    assert bucket.capacity == 5
    for _ in range(5):
        assert bucket.wait_time(1) == 0
        bucket.level -= 1
    assert bucket.wait_time(1) == 1.0
    clock.now = 2.5
    assert bucket.wait_time(1) == 0 and round(bucket.level, 6) == 2.5


def test_a_bucket_after_a_recent_run_holds_only_what_refilled_since_it_stopped():
    clock = FakeClock()
    assert TokenBucket(60, burst_seconds=5, clock=clock).level == 5  # no run before: a full burst
    assert TokenBucket(60, burst_seconds=5, idle_s=2.0, clock=clock).level == 2.0
    assert TokenBucket(60, burst_seconds=5, idle_s=0.0, clock=clock).wait_time(1) == 1.0
    assert TokenBucket(60, burst_seconds=5, idle_s=60.0, clock=clock).level == 5
    limiter = EndpointLimiter(2, requests_per_minute=60, tokens_per_minute=6000, idle_s=1.0, clock=clock)
    assert (limiter.requests.level, limiter.tokens.level) == (1.0, 100.0)


def test_an_oversized_request_waits_for_a_full_bucket_not_forever():
    clock = FakeClock()
    bucket = TokenBucket(600, burst_seconds=1, clock=clock)  # 10/s, capacity 10
    bucket.level = 0
    assert bucket.wait_time(1000) == 1.0  # a full bucket, then it goes into debt


def test_requests_per_minute_are_spaced_out():
    async def main():
        bucket = TokenBucket(1200, burst_seconds=0.05)  # 20/s, capacity 1
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(6):
            await bucket.take(1)
        return loop.time() - start

    assert run_sync(main) >= 0.2  # 5 waits of 1/20 s after the first


def test_the_limiter_caps_concurrency_and_honours_a_cool_down():
    async def main():
        limiter = EndpointLimiter(max_concurrency=3)
        running = peak = 0

        async def work():
            nonlocal running, peak
            await limiter.acquire()
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            limiter.release()

        await asyncio.gather(*(work() for _ in range(20)))
        loop = asyncio.get_running_loop()
        limiter.cool_down(0.2)
        start = loop.time()
        await limiter.acquire()
        limiter.release()
        return peak, loop.time() - start

    peak, waited = run_sync(main)
    assert peak == 3
    assert waited >= 0.19
