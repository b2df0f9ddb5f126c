"""Work through an endpoint's pending calls: the Django side of the gateway.

A batch is a set of LLMCall rows inserted as `pending` (services.llm_calls_enqueue). The runner walks
them in primary-key order from a cursor, sends them through the client with the endpoint's limits, and
records each result as it arrives, in small groups. A finished row is never sent again, so a re-run, a
redelivered task or a new worker after a crash sends only what is still pending. The only calls that
can be paid twice are those in flight at the instant a worker dies (the provider answered, the answer
never reached the ledger).
"""

import logging
import time
from dataclasses import dataclass, field, replace

from django.db import transaction

from apps.experiments.models import Experiment
from apps.llm import conf
from apps.llm.budget import BudgetGate, Reservation
from apps.llm.lease import lease_renew
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.recording import Outcome, write_outcomes
from apps.llm.selectors import endpoint_config
from apps.llm.services import llm_endpoint_record_error, llm_experiments_pause, llm_invalid_replies_to_review
from workers.llm import tokens
from workers.llm.batch import ThreadedBatch
from workers.llm.contracts import check_reply, max_resamples
from workers.llm.procbatch import ProcessBatch
from workers.llm.requests import PreparedRequest
from workers.llm.types import FAILED, FATAL, OK, CallJob, CallResult, EndpointConfig

log = logging.getLogger(__name__)

# A rejected request (bad parameters, too long): that call fails, its experiment pauses, others go on.
REQUEST_ERRORS = frozenset({400, 413, 422})
_STOPPED = (Experiment.Status.PAUSED, Experiment.Status.FAILED)


@dataclass
class Flight:
    call_id: int
    request: PreparedRequest
    experiment_id: int | None
    round_id: int | None
    stage: str
    purpose: str
    attempts_before: int
    reservation: Reservation

    @property
    def depth(self) -> int:
        return int(self.request.contract.get("resample_depth", 0))


@dataclass
class RunSummary:
    sent: int = 0
    ok: int = 0
    invalid: int = 0
    failed: int = 0
    resampled: int = 0
    stopped: str = ""  # why the run stopped early, if it did
    paused: set = field(default_factory=set)
    more_work: bool = False  # stopped for time: re-enqueue


class PendingFeed:
    """Pending calls of one endpoint in pk order, skipping experiments that are paused."""

    def __init__(self, endpoint_id: int):
        self.endpoint_id = endpoint_id
        self.cursor = 0
        self._stopped: list[int] = []
        self._stopped_at = 0.0

    def stopped_experiments(self) -> list[int]:
        if time.monotonic() - self._stopped_at > 1.0:
            self._stopped = list(Experiment.objects.filter(status__in=_STOPPED).values_list("id", flat=True))
            self._stopped_at = time.monotonic()
        return self._stopped

    def invalidate(self) -> None:
        self._stopped_at = 0.0

    def next(self, limit: int) -> list[tuple]:
        rows = list(
            LLMCall.objects.filter(endpoint_id=self.endpoint_id, status=LLMCall.Status.PENDING, id__gt=self.cursor)
            .exclude(experiment_id__in=self.stopped_experiments())
            .order_by("id")
            .values_list("id", "request", "request_hash", "experiment_id", "round_id", "stage", "purpose", "attempts")[
                :limit
            ]
        )
        if rows:
            self.cursor = rows[-1][0]
        return rows


class Recorder:
    """Turns client results into ledger rows: checks each reply against its contract, asks for fresh
    samples of unparsable replies (then sends the last one to people), pauses what must stop."""

    def __init__(self, endpoint: LLMEndpoint, config: EndpointConfig, budget: BudgetGate, summary: RunSummary):
        self.endpoint, self.config, self.budget, self.summary = endpoint, config, budget, summary

    def record(self, results: list[CallResult], flights: dict[int, Flight]) -> str:
        """Write the results; returns a reason when the whole run must stop (the endpoint is unusable)."""
        outcomes, resample, to_review, pauses = [], [], [], {}
        stop = ""
        for result in results:
            flight = flights.pop(result.key)
            cost = self.config.cost(result.prompt_tokens, result.completion_tokens)
            outcome = Outcome(
                call_id=flight.call_id,
                status=LLMCall.Status.PENDING,
                reply=result.content,
                finish_reason=result.finish_reason,
                error=result.error,
                attempts=flight.attempts_before + result.attempts,
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                cost=cost,
                latency_ms=result.latency_ms,
                http_status=result.http_status,
            )
            if result.status == OK:
                check = check_reply(flight.request.contract, result.content, result.finish_reason)
                if check.valid:
                    outcome.status, outcome.parsed = LLMCall.Status.OK, check.parsed
                    self.summary.ok += 1
                else:
                    outcome.status = LLMCall.Status.INVALID
                    outcome.error = f"Unparsable reply ({check.code}): {check.reason}"
                    self.summary.invalid += 1
                    if flight.depth < max_resamples(flight.request.contract):
                        resample.append(flight)
                    else:
                        to_review.append(flight.call_id)
            elif result.status == FAILED:
                outcome.status = LLMCall.Status.FAILED
                self.summary.failed += 1
            elif result.status == FATAL:
                reason = self._fatal_reason(flight, result)
                if result.http_status in REQUEST_ERRORS:
                    outcome.status = LLMCall.Status.FAILED
                    self.summary.failed += 1
                    if flight.experiment_id is not None:
                        pauses[flight.experiment_id] = reason
                else:
                    # The endpoint itself is unusable (key, permission, URL, model): the call stays
                    # pending so it is sent once the endpoint is fixed and the experiment resumed.
                    stop = stop or reason
            self.budget.settle(
                flight.experiment_id, flight.reservation, cost, result.prompt_tokens + result.completion_tokens
            )
            outcomes.append(outcome)
        with transaction.atomic():
            write_outcomes(outcomes)
            if resample:
                self._resample(resample)
            llm_invalid_replies_to_review(call_ids=to_review)
            if pauses:
                for experiment_id, reason in pauses.items():
                    llm_experiments_pause(experiment_ids=[experiment_id], reason=reason)
                self.summary.paused.update(pauses)
        if stop:
            self.stop_endpoint(stop)
        return stop

    def _fatal_reason(self, flight: Flight, result: CallResult) -> str:
        where = f"stage '{flight.stage}'" if flight.stage else "LLM calls"
        status = f"HTTP {result.http_status}" if result.http_status else "an error"
        detail = result.error if result.error.startswith("HTTP") else f"{status}: {result.error}"
        return f"Paused {where}: endpoint '{self.endpoint.name}' answered {detail}"[:2000]

    def stop_endpoint(self, reason: str) -> None:
        """Pause every experiment waiting on this endpoint and note the error on the endpoint."""
        llm_endpoint_record_error(endpoint_id=self.endpoint.pk, error=reason)
        waiting = set(
            LLMCall.objects.filter(endpoint=self.endpoint, status=LLMCall.Status.PENDING)
            .exclude(experiment_id=None)
            .values_list("experiment_id", flat=True)
            .distinct()
        )
        llm_experiments_pause(experiment_ids=list(waiting), reason=reason)
        self.summary.paused.update(waiting)
        self.summary.stopped = reason

    def _resample(self, flights: list[Flight]) -> None:
        rows, links = [], {}
        for flight in flights:
            request = flight.request.with_sample(flight.request.sample + 1)
            request = replace(request, contract={**request.contract, "resample_depth": flight.depth + 1})
            links[request.hash] = flight.call_id
            rows.append(
                LLMCall(
                    request_hash=request.hash,
                    endpoint=self.endpoint,
                    model=request.model,
                    purpose=flight.purpose,
                    request=request.to_json(),
                    sample_index=request.sample,
                    resample_of_id=flight.call_id,
                    experiment_id=flight.experiment_id,
                    round_id=flight.round_id,
                    stage=flight.stage,
                )
            )
        LLMCall.objects.bulk_create(rows, ignore_conflicts=True)
        # A fresh sample that was already in the ledger (asked for by another experiment, say) joins this
        # chain if it belongs to none.
        for call_id, request_hash in LLMCall.objects.filter(
            request_hash__in=list(links), resample_of__isnull=True
        ).values_list("id", "request_hash"):
            if call_id != links[request_hash]:
                LLMCall.objects.filter(pk=call_id).update(resample_of_id=links[request_hash])
        self.summary.resampled += len(rows)


def flight_from_row(row: tuple, budget: BudgetGate) -> tuple[Flight | None, str]:
    call_id, request_json, _hash, experiment_id, round_id, stage, purpose, attempts = row
    request = PreparedRequest.from_json(request_json)
    reservation, refusal = budget.admit(experiment_id, request)
    if reservation is None:
        return None, refusal
    return Flight(call_id, request, experiment_id, round_id, stage, purpose, attempts, reservation), ""


class Heartbeat:
    def __init__(self, endpoint_id: int, owner: str, ttl_s: float):
        self.endpoint_id, self.owner, self.ttl_s = endpoint_id, owner, ttl_s
        self._next = time.monotonic() + ttl_s / 3

    def beat(self) -> bool:
        if time.monotonic() < self._next:
            return True
        self._next = time.monotonic() + self.ttl_s / 3
        return lease_renew(endpoint_id=self.endpoint_id, owner=self.owner, ttl_s=self.ttl_s)


def refuse(feed: PendingFeed, summary: RunSummary, experiment_id: int, stage: str, reason: str) -> None:
    where = f"Paused stage '{stage}'. " if stage else "Paused. "
    llm_experiments_pause(experiment_ids=[experiment_id], reason=where + reason)
    summary.paused.add(experiment_id)
    feed.invalidate()


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
        from apps.llm.offline import run_offline_endpoint  # loads embedding code only for offline work

        return run_offline_endpoint(endpoint, owner=owner, max_run_s=max_run_s)
    config = endpoint_config(endpoint)
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
                    flight, refusal = flight_from_row(row, budget)
                    if flight is None:
                        refuse(feed, summary, row[3], row[5], refusal)
                        continue
                    flights[flight.call_id] = flight
                    estimate = 0
                    # The tokens-per-minute bucket counts prompt + reply limit, as providers do.
                    if need_tokens:
                        req = flight.request
                        estimate = tokens.estimate(req.messages, req.params, req.model).max_tokens
                    jobs.append(CallJob(flight.call_id, flight.request.body(), row[2], estimate))
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
    return summary
