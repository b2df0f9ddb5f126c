"""Run an LLMClient on its own event loop in a background thread, fed and drained from a plain thread.

The caller (a Celery task) stays synchronous: it reads pending calls from the database, submits them,
and writes results back in groups, while the loop thread keeps up to `max_concurrency` requests in
flight. Requests can be submitted while others run, so the pipeline never drains between groups.
"""

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Iterable

from workers.llm.client import LLMClient
from workers.llm.retry import RetryPolicy
from workers.llm.types import FATAL, CallJob, CallResult, EndpointConfig, MissingApiKey

_CLOSE = object()


class ThreadedBatch:
    def __init__(self, config: EndpointConfig, *, policy: RetryPolicy | None = None):
        self.config = config
        self.policy = policy
        self._results: queue.Queue[CallResult] = queue.Queue()
        self._loop = asyncio.new_event_loop()
        self._inbox: asyncio.Queue | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"llm-{config.name}", daemon=True)
        self._tasks: set[asyncio.Task] = set()
        self._aborting = False
        self.startup_error: str = ""

    # --- caller's side --------------------------------------------------------------------------------
    def start(self) -> "ThreadedBatch":
        self._thread.start()
        self._ready.wait()
        return self

    def submit(self, jobs: Iterable[CallJob]) -> None:
        jobs = list(jobs)
        if jobs:
            self._loop.call_soon_threadsafe(self._enqueue, jobs)

    def results(self, *, wait_s: float = 0.05, min_items: int = 1) -> list[CallResult]:
        """Results that have arrived; waits up to `wait_s` for at least `min_items` of them."""
        out: list[CallResult] = []
        deadline = time.monotonic() + wait_s
        while True:
            try:
                while True:
                    out.append(self._results.get_nowait())
            except queue.Empty:
                pass
            remaining = deadline - time.monotonic()
            if len(out) >= min_items or remaining <= 0:
                return out
            try:
                out.append(self._results.get(timeout=remaining))
            except queue.Empty:
                return out

    def pending(self) -> bool:
        """Whether results are waiting to be collected."""
        return not self._results.empty()

    def close(self, *, abort: bool = False, timeout: float | None = None) -> None:
        """Stop accepting work; with `abort`, cancel calls in flight (their results never arrive)."""
        if self._loop.is_closed():
            return
        if abort:
            self._loop.call_soon_threadsafe(self._cancel_all)
        self._loop.call_soon_threadsafe(self._enqueue, [_CLOSE])
        self._thread.join(timeout)

    # --- loop thread ----------------------------------------------------------------------------------
    def _enqueue(self, jobs: list) -> None:
        for job in jobs:
            self._inbox.put_nowait(job)

    def _cancel_all(self) -> None:
        self._aborting = True  # jobs still queued are dropped too, not only those already running
        for task in list(self._tasks):
            task.cancel()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _one(self, client: LLMClient, job: CallJob) -> None:
        try:
            result = await client.call(job)
        except asyncio.CancelledError:
            return
        self._results.put(result)

    async def _main(self) -> None:
        self._inbox = asyncio.Queue()
        client = LLMClient(self.config, policy=self.policy)
        try:
            client.open()
        except MissingApiKey as exc:
            self.startup_error = str(exc)
        self._ready.set()
        try:
            while True:
                job = await self._inbox.get()
                if job is _CLOSE:
                    break
                if self._aborting:
                    continue
                if self.startup_error:
                    self._results.put(CallResult(job.key, FATAL, error=self.startup_error))
                    continue
                task = asyncio.create_task(self._one(client, job))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            await client.aclose()
