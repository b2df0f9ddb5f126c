"""Work through an endpoint's pending calls: the Django side of the gateway.

A batch is a set of LLMCall rows inserted as `pending` (services.llm_calls_enqueue). The runner walks
them in primary-key order from a cursor, sends them through the client with the endpoint's limits, and
records each result as it arrives, in small groups. A finished row is never sent again, so a re-run, a
redelivered task or a new worker after a crash sends only what is still pending. The only calls that
can be paid twice are those in flight at the instant a worker dies (the provider answered, the answer
never reached the ledger).
"""

import dataclasses
import logging
import time

from apps.llm import conf, pacing
from apps.llm.budget import BudgetGate
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.offline import run_offline_endpoint
from apps.llm.running import Flight, Heartbeat, PendingFeed, Recorder, RunSummary, flight_from_row, refuse
from apps.llm.selectors import endpoint_config
from workers.llm import tokens
from workers.llm.batch import ThreadedBatch
from workers.llm.procbatch import ProcessBatch
from workers.llm.types import CallJob, EndpointConfig

log = logging.getLogger(__name__)


def _batch_for(endpoint: LLMEndpoint, config: EndpointConfig):
    threshold = conf.process_threshold()
    if threshold == 0 or (
        threshold > 0
        and endpoint.max_concurrency >= conf.PROCESS_MIN_CONCURRENCY
        and LLMCall.objects.filter(endpoint=endpoint, status=LLMCall.Status.PENDING).count() >= threshold
    ):
        return ProcessBatch(config, policy=conf.retry_policy()).start()
    return ThreadedBatch(config, policy=conf.retry_policy()).start()


def run_endpoint(endpoint: LLMEndpoint, *, owner: str, max_run_s: float | None = None) -> RunSummary:
    """Send the endpoint's pending calls until none is left (or the run's time is up)."""
    if endpoint.is_offline:
        return run_offline_endpoint(endpoint, owner=owner, max_run_s=max_run_s)
    # The rate buckets start from what the endpoint's previous run (in any process) may have left.
    config = dataclasses.replace(endpoint_config(endpoint), idle_s=pacing.idle_seconds(endpoint_id=endpoint.pk))
    summary = RunSummary()
    budget = BudgetGate(config)
    recorder = Recorder(endpoint, config, budget, summary)
    feed = PendingFeed(endpoint.pk)
    heartbeat = Heartbeat(endpoint.pk, owner, conf.lease_seconds())
    window = endpoint.max_concurrency * conf.window_factor()
    need_tokens = bool(endpoint.tokens_per_minute)
    deadline = time.monotonic() + max_run_s if max_run_s else None
    flights: dict[int, Flight] = {}
    batch = _batch_for(endpoint, config)
    abort = False
    rescanned = False
    try:
        if batch.startup_error:
            recorder.stop_endpoint(f"Paused LLM calls: {batch.startup_error}")
            return summary
        while True:
            if not heartbeat.beat():
                summary.stopped, abort = "lost the endpoint lease to another runner", True
                break
            out_of_time = deadline is not None and time.monotonic() > deadline
            fetched = 0
            if not out_of_time and (len(flights) <= window * 3 // 4):
                rows = feed.next(window - len(flights))
                fetched = len(rows)
                jobs = []
                for row in rows:
                    flight, admission = flight_from_row(row, budget, feed.held())
                    if flight is None:
                        if admission is not None:
                            refuse(feed, summary, admission)
                        continue
                    flights[flight.call_id] = flight
                    estimate = 0
                    # The tokens-per-minute bucket counts prompt + reply limit, as providers do.
                    if need_tokens:
                        req = flight.request
                        estimate = tokens.estimate(req.messages, req.params, req.model).max_tokens
                    jobs.append(CallJob(flight.call_id, flight.request.body(), row.request_hash, estimate))
                summary.sent += len(jobs)
                batch.submit(jobs)
            if flights:
                results = batch.results(wait_s=0.05, min_items=min(len(flights), 32))
                if results and recorder.record(results, flights):
                    abort = True
                    break
                if summary.paused:
                    feed.invalidate()
                continue
            if out_of_time:
                summary.more_work = True
                break
            if fetched == 0:
                # Rows below the cursor can turn pending again (a fresh sample that already existed):
                # one pass from the start picks them up before the run ends.
                if rescanned:
                    break
                feed.cursor, rescanned = 0, True
            else:
                rescanned = False
    finally:
        batch.close(abort=abort)
        pacing.sending_until(endpoint_id=endpoint.pk, until=time.time())
    return summary
