"""What the online and offline runners share: the pending feed, the recorder, the heartbeat, refusals.

A pending call is sent unless every use of it belongs to a held experiment, so one experiment's hold
never blocks work another experiment asked for; a call nobody uses (a script's) is always sent. Each call
is charged to one unheld experiment that uses it (budget.py), recorded on that use once the call ends.
"""

import time
from dataclasses import dataclass, field, replace

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from apps.llm import pacing
from apps.llm.budget import Admission, BudgetGate, Reservation, Use
from apps.llm.lease import lease_renew
from apps.llm.models import LLMCall, LLMCallUse, LLMEndpoint
from apps.llm.recording import Outcome, write_outcomes
from apps.llm.selectors import held_experiments
from apps.llm.services import llm_endpoint_record_error, llm_holds_place, llm_invalid_replies_to_review
from apps.llm.signals import llm_calls_settled
from workers.llm.contracts import check_reply, max_resamples
from workers.llm.requests import PreparedRequest
from workers.llm.types import FAILED, FATAL, OK, CallResult, EndpointConfig

# A rejected request (bad parameters, too long): that call fails, its experiments are held, others go on.
REQUEST_ERRORS = frozenset({400, 413, 422})


@dataclass
class Flight:
    call_id: int
    request: PreparedRequest
    purpose: str
    attempts_before: int
    reservation: Reservation
    payer: Use | None
    experiments: frozenset  # every experiment that uses the call

    @property
    def depth(self) -> int:
        return int(self.request.contract.get("resample_depth", 0))

    @property
    def stage(self) -> str:
        return self.payer.stage if self.payer else ""


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


@dataclass
class PendingRow:
    call_id: int
    request: dict
    request_hash: str
    purpose: str
    attempts: int
    uses: list[Use]


class PendingFeed:
    """Pending calls of one endpoint in pk order (the partial index), with their uses; calls that only
    held experiments use are passed over."""

    def __init__(self, endpoint_id: int):
        self.endpoint_id = endpoint_id
        self.cursor = 0
        self._held: set[int] = set()
        self._held_at = 0.0

    def held(self) -> set[int]:
        if time.monotonic() - self._held_at > 1.0:
            self._held = set(held_experiments())
            self._held_at = time.monotonic()
        return self._held

    def invalidate(self) -> None:
        self._held_at = 0.0

    def next(self, limit: int) -> list[PendingRow]:
        held = self.held()
        qs = LLMCall.objects.filter(endpoint_id=self.endpoint_id, status=LLMCall.Status.PENDING, id__gt=self.cursor)
        if held:
            uses = LLMCallUse.objects.filter(call_id=OuterRef("pk"))
            qs = qs.filter(Q(~Exists(uses)) | Exists(uses.exclude(experiment_id__in=held)))
        rows = list(qs.order_by("id").values_list("id", "request", "request_hash", "purpose", "attempts")[:limit])
        if not rows:
            return []
        self.cursor = rows[-1][0]
        uses: dict[int, list[Use]] = {}
        for call_id, pk, experiment_id, stage in (
            LLMCallUse.objects.filter(call_id__in=[r[0] for r in rows])
            .order_by("id")
            .values_list("call_id", "id", "experiment_id", "stage")
        ):
            uses.setdefault(call_id, []).append(Use(pk, experiment_id, stage))
        return [PendingRow(*row, uses.get(row[0], [])) for row in rows]


def flight_from_row(row: PendingRow, budget: BudgetGate, held: set[int]) -> tuple[Flight | None, Admission | None]:
    """The row's flight if it may go now; else (None, the refusal), or (None, None) when every use of it
    turned out held since it was fetched."""
    request = PreparedRequest.from_json(row.request)
    free = [use for use in row.uses if use.experiment_id not in held]
    if row.uses and not free:
        return None, None
    admission = budget.admit(free, request)
    if admission.reservation is None:
        return None, admission
    experiments = frozenset(use.experiment_id for use in row.uses)
    flight = Flight(
        row.call_id, request, row.purpose, row.attempts, admission.reservation, admission.payer, experiments
    )
    return flight, admission


def refuse(feed: PendingFeed, summary: RunSummary, admission: Admission) -> None:
    """Hold the experiments that could not afford a call."""
    for experiment_id, (stage, reason) in admission.refusals.items():
        where = f"Paused stage '{stage}'. " if stage else "Paused. "
        llm_holds_place(experiment_ids=[experiment_id], reason=where + reason)
        summary.paused.add(experiment_id)
    feed.invalidate()


class Heartbeat:
    """Renews the endpoint's lease every third of its life, and says until when this run may send (the
    next renewal), for the rate buckets of whichever run comes next."""

    def __init__(self, endpoint_id: int, owner: str, ttl_s: float):
        self.endpoint_id, self.owner, self.ttl_s = endpoint_id, owner, ttl_s
        self._next = time.monotonic() + ttl_s / 3
        pacing.sending_until(endpoint_id=endpoint_id, until=time.time() + ttl_s / 3)

    def beat(self) -> bool:
        if time.monotonic() < self._next:
            return True
        self._next = time.monotonic() + self.ttl_s / 3
        if not lease_renew(endpoint_id=self.endpoint_id, owner=self.owner, ttl_s=self.ttl_s):
            return False
        pacing.sending_until(endpoint_id=self.endpoint_id, until=time.time() + self.ttl_s / 3)
        return True


def _settled_on_commit(call_ids: list[int]) -> None:
    """Tell the experiments these calls serve that they settled, once the outcomes are committed."""
    if not call_ids:
        return
    experiments = sorted(
        set(LLMCallUse.objects.filter(call_id__in=call_ids).values_list("experiment_id", flat=True).distinct())
    )
    if experiments:
        transaction.on_commit(lambda: llm_calls_settled.send(sender=Recorder, experiment_ids=experiments))


class Recorder:
    """Turns client results into ledger rows: checks each reply against its contract, asks for fresh
    samples of unparsable replies (then sends the last one to people), marks who paid, holds what must
    stop."""

    def __init__(self, endpoint: LLMEndpoint, config: EndpointConfig, budget: BudgetGate, summary: RunSummary):
        self.endpoint, self.config, self.budget, self.summary = endpoint, config, budget, summary

    def record(self, results: list[CallResult], flights: dict[int, Flight]) -> str:
        """Write the results; returns a reason when the whole run must stop (the endpoint is unusable)."""
        outcomes, resample, to_review, holds, payers = [], [], [], {}, []
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
                    for experiment_id in flight.experiments:
                        holds[experiment_id] = reason
                else:
                    # The endpoint itself is unusable (key, permission, URL, model): the call stays
                    # pending so it is sent once the endpoint is fixed and the experiment resumed.
                    stop = stop or reason
            self.budget.settle(flight.payer, flight.reservation, cost, result.prompt_tokens + result.completion_tokens)
            if outcome.finished and flight.payer is not None:
                payers.append(flight.payer.id)
            outcomes.append(outcome)
        with transaction.atomic():
            write_outcomes(outcomes)
            # At most one payer per call: a result delivered twice (a lost lease) must not charge twice.
            LLMCallUse.objects.filter(pk__in=payers).exclude(call__uses__paid=True).update(paid=True)
            if resample:
                self._resample(resample)
            llm_invalid_replies_to_review(call_ids=to_review)
            for experiment_id, reason in holds.items():
                llm_holds_place(experiment_ids=[experiment_id], reason=reason)
            self.summary.paused.update(holds)
            _settled_on_commit([o.call_id for o in outcomes if o.finished])
        if stop:
            self.stop_endpoint(stop)
        return stop

    def _fatal_reason(self, flight: Flight, result: CallResult) -> str:
        where = f"stage '{flight.stage}'" if flight.stage else "LLM calls"
        status = f"HTTP {result.http_status}" if result.http_status else "an error"
        detail = result.error if result.error.startswith("HTTP") else f"{status}: {result.error}"
        return f"Paused {where}: endpoint '{self.endpoint.name}' answered {detail}"[:2000]

    def stop_endpoint(self, reason: str) -> None:
        """Hold every experiment waiting on this endpoint and note the error on the endpoint."""
        llm_endpoint_record_error(endpoint_id=self.endpoint.pk, error=reason)
        pending = LLMCall.objects.filter(endpoint=self.endpoint, status=LLMCall.Status.PENDING).values("pk")
        waiting = set(LLMCallUse.objects.filter(call_id__in=pending).values_list("experiment_id", flat=True).distinct())
        llm_holds_place(experiment_ids=sorted(waiting), reason=reason)
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
                )
            )
        LLMCall.objects.bulk_create(rows, ignore_conflicts=True)
        fresh = dict(LLMCall.objects.filter(request_hash__in=list(links)).values_list("request_hash", "id"))
        # A fresh sample that was already in the ledger (asked for by another experiment, say) joins this
        # chain if it belongs to none.
        for call_id, request_hash in LLMCall.objects.filter(
            request_hash__in=list(links), resample_of__isnull=True
        ).values_list("id", "request_hash"):
            if call_id != links[request_hash]:
                LLMCall.objects.filter(pk=call_id).update(resample_of_id=links[request_hash])
        # The fresh sample is asked for by whoever asked for the reply it replaces.
        sample_of = {links[h]: pk for h, pk in fresh.items()}
        uses = [
            LLMCallUse(
                call_id=sample_of[call_id], experiment_id=experiment_id, round_id=round_id, stage=stage, item=item
            )
            for call_id, experiment_id, round_id, stage, item in LLMCallUse.objects.filter(
                call_id__in=list(sample_of)
            ).values_list("call_id", "experiment_id", "round_id", "stage", "item")
        ]
        LLMCallUse.objects.bulk_create(uses, batch_size=1000, ignore_conflicts=True)
        self.summary.resampled += len(rows)
