"""Writes for endpoints, the call ledger (paid calls and their uses) and the gateway's holds."""

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from apps.core.errors import RetortError
from apps.llm.kick import kick_endpoint
from apps.llm.models import LLMCall, LLMCallUse, LLMEndpoint, LLMHold
from apps.llm.selectors import endpoint_config, llm_call_chains, llm_endpoint_identity
from apps.llm.signals import experiment_hold_requested
from apps.reviews.models import ReviewTask
from workers.llm.client import call_once
from workers.llm.redaction import redact_env
from workers.llm.requests import PreparedRequest
from workers.llm.sync import run_sync

ENDPOINT_FIELDS = (
    "name",
    "backend",
    "base_url",
    "model",
    "checkpoint",
    "api_key_env",
    "max_concurrency",
    "requests_per_minute",
    "tokens_per_minute",
    "timeout_s",
    "price_input_per_mtok",
    "price_output_per_mtok",
    "default_params",
    "offline_dataset",
    "terms_of_use",
    "terms_restrict_training",
)


# The most requests one endpoint keeps in flight, as an experiment config's inline endpoint allows: the
# runner reads a window of pending calls a few times this size into memory.
MAX_CONCURRENCY = 10_000


def _check_endpoint(endpoint: LLMEndpoint) -> None:
    if endpoint.is_offline and not endpoint.model:
        # Offline backends answer from a dataset; the backend's name stands in for a model name.
        endpoint.model = endpoint.backend
    endpoint.full_clean()
    if endpoint.max_concurrency > MAX_CONCURRENCY:
        raise RetortError(
            f"Max concurrency is at most {MAX_CONCURRENCY:,} requests in flight; got {endpoint.max_concurrency:,}.",
            field="max_concurrency",
        )
    if endpoint.backend == LLMEndpoint.Backend.OPENAI and not endpoint.base_url:
        raise RetortError("An OpenAI-compatible endpoint needs a base URL.", field="base_url")
    needs_dataset = endpoint.backend != LLMEndpoint.Backend.LOCAL_CLASSIFIER
    if endpoint.is_offline and needs_dataset and endpoint.offline_dataset_id is None:
        raise RetortError("An offline backend needs the dataset it answers from.", field="offline_dataset")


def _check_key_change(by, before: LLMEndpoint | None, after: LLMEndpoint) -> None:
    """A key goes wherever the endpoint's base URL points. So choosing which variable an endpoint sends,
    or moving an endpoint that sends one, is an administrator's decision; operators may tune the rest.
    `by` is None for trusted callers (management commands, code), which act as the machine's owner."""
    if by is None or by.is_superuser or not after.api_key_env:
        return
    if before is None or before.api_key_env != after.api_key_env:
        raise RetortError(
            "Only an administrator may choose the API key variable of an endpoint: the key is sent to "
            "whatever address the endpoint points at.",
            field="api_key_env",
        )
    if before.base_url != after.base_url:
        raise RetortError(
            "Only an administrator may change the base URL of an endpoint that sends an API key: the key "
            "would go to the new address.",
            field="base_url",
        )


@transaction.atomic
def llm_endpoint_create(*, by=None, **fields) -> LLMEndpoint:
    unknown = set(fields) - set(ENDPOINT_FIELDS)
    if unknown:
        raise RetortError(f"Unknown endpoint fields: {', '.join(sorted(unknown))}.")
    endpoint = LLMEndpoint(**fields)
    _check_endpoint(endpoint)
    _check_key_change(by, None, endpoint)
    endpoint.save()
    return endpoint


@transaction.atomic
def llm_endpoint_update(*, endpoint: LLMEndpoint, by=None, **fields) -> LLMEndpoint:
    before = LLMEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    for name, value in fields.items():
        if name not in ENDPOINT_FIELDS:
            raise RetortError(f"Unknown endpoint field {name!r}.")
        setattr(endpoint, name, value)
    _check_endpoint(endpoint)
    _check_key_change(by, before, endpoint)
    endpoint.save()
    return endpoint


def llm_endpoint_record_error(*, endpoint_id: int, error: str) -> None:
    LLMEndpoint.objects.filter(pk=endpoint_id).update(last_error=error, last_error_at=timezone.now())


# --- the ledger ---------------------------------------------------------------------------------------
def _in_bulk_by_hash(hashes: list[str], into: dict[str, LLMCall]) -> None:
    for start in range(0, len(hashes), 2000):
        into.update(LLMCall.objects.in_bulk(hashes[start : start + 2000], field_name="request_hash"))


@transaction.atomic
def llm_calls_enqueue(
    *,
    endpoint: LLMEndpoint,
    requests: Sequence[PreparedRequest],
    purpose: str,
    experiment_id: int | None = None,
    round_id: int | None = None,
    stage: str = "",
    items: Sequence[str] | None = None,
    kick: bool = True,
) -> list[LLMCall]:
    """Queue calls and return one LLMCall per request, in order. A request whose hash is already in the
    ledger is not queued again: its row is returned, finished or not, whoever asked first. Only a new
    sample index (or another endpoint identity) makes a new call.

    With an experiment, each request also records that experiment's use of the call (its round, stage
    and `items[i]`, the stage's key for what the request is for); asking again for the same item makes
    no second use. Calls queued without an experiment (scripts, benchmarks) have no use."""
    if items is not None and len(items) != len(requests):
        raise RetortError(f"{len(items)} items for {len(requests)} requests: give one item per request.")
    if (round_id or stage or items) and experiment_id is None:
        raise RetortError("A round, stage or items belong to an experiment: give its experiment_id.")
    if any(r.backend != endpoint.backend for r in requests):
        raise RetortError(f"These requests were prepared for another backend than {endpoint.name}'s.")
    # The local classifier's head may change while requests are prepared: each is answered by the head its
    # key names, so only the rest of the identity must be the endpoint's.
    identity = llm_endpoint_identity(endpoint, head=False)
    varies = {"head"} if endpoint.backend == LLMEndpoint.Backend.LOCAL_CLASSIFIER else set()
    if any({k: v for k, v in r.identity.items() if k not in varies} != identity for r in requests):
        raise RetortError(
            f"These requests were prepared for another server, checkpoint or dataset than {endpoint.name}'s; "
            "prepare them with llm_request_for(endpoint, ...)."
        )
    by_hash: dict[str, PreparedRequest] = {}
    for request in requests:
        by_hash.setdefault(request.hash, request)
    existing: dict[str, LLMCall] = {}
    _in_bulk_by_hash(list(by_hash), existing)
    new_rows = [
        LLMCall(
            request_hash=h,
            endpoint=endpoint,
            model=r.model,
            purpose=purpose,
            request=r.to_json(),
            sample_index=r.sample,
        )
        for h, r in by_hash.items()
        if h not in existing
    ]
    # ignore_conflicts: another process may have queued the same request a moment ago; theirs stands.
    LLMCall.objects.bulk_create(new_rows, batch_size=1000, ignore_conflicts=True)
    _in_bulk_by_hash([row.request_hash for row in new_rows], existing)
    calls = [existing[r.hash] for r in requests]
    if experiment_id is not None:
        _uses_record(calls, experiment_id=experiment_id, round_id=round_id, stage=stage, items=items)
    if kick and any(call.status == LLMCall.Status.PENDING for call in existing.values()):
        kick_endpoint(endpoint.pk)
    return calls


def _uses_record(calls: list[LLMCall], *, experiment_id: int, round_id, stage: str, items) -> None:
    """One use per (call, item) for the experiment, carried down each call's chain of fresh samples, so
    the resamples of an unparsable reply count (and are held, charged and reviewed) for it too."""
    keys = sorted({(call.pk, items[i] if items is not None else "") for i, call in enumerate(calls)})
    for start in range(0, len(keys), 2000):
        _uses_record_group(keys[start : start + 2000], experiment_id, round_id, stage)


def _uses_record_group(keys: list[tuple[int, str]], experiment_id: int, round_id, stage: str) -> None:
    chains = llm_call_chains(sorted({pk for pk, _ in keys}))
    rows = [
        LLMCallUse(call_id=member, experiment_id=experiment_id, round_id=round_id, stage=stage, item=item)
        for pk, item in keys
        for member in chains[pk]
    ]
    LLMCallUse.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    # A chain that already ended unparsable went to people: this experiment's use of it goes there too.
    # (An unparsable reply with samples left is resampled in the same transaction that records it, so a
    # committed final that is still invalid has none left.)
    finals = [chain[-1] for chain in chains.values()]
    invalid = LLMCall.objects.filter(pk__in=finals, status=LLMCall.Status.INVALID).values("pk")
    _review_uses(LLMCallUse.objects.filter(call_id__in=invalid, experiment_id=experiment_id))


@transaction.atomic
def llm_calls_retry_failed(
    *, experiment_id: int | None = None, endpoint_id: int | None = None, stage: str | None = None
) -> int:
    """Send calls that failed (retries spent, or a rejected request) once more: an operator's decision.
    The charge is decided again when the call is sent."""
    qs = LLMCall.objects.filter(status=LLMCall.Status.FAILED)
    if experiment_id is not None or stage is not None:
        uses = LLMCallUse.objects.all()
        if experiment_id is not None:
            uses = uses.filter(experiment_id=experiment_id)
        if stage is not None:
            uses = uses.filter(stage=stage)
        qs = qs.filter(pk__in=uses.values("call_id"))
    if endpoint_id is not None:
        qs = qs.filter(endpoint_id=endpoint_id)
    ids = list(qs.values_list("pk", flat=True))
    endpoints = set(LLMCall.objects.filter(pk__in=ids).values_list("endpoint_id", flat=True))
    LLMCallUse.objects.filter(call_id__in=ids, paid=True).update(paid=False)
    count = LLMCall.objects.filter(pk__in=ids).update(status=LLMCall.Status.PENDING, error="", http_status=None)
    for pk in endpoints:
        if pk is not None:
            kick_endpoint(pk)
    return count


RETRY_SAMPLE_TRIES = 16


@transaction.atomic
def llm_calls_resample(*, call_ids: Sequence[int]) -> int:
    """Ask again for calls whose replies stayed unparsable (a reviewer chose "retry"): each gets a fresh
    sample (the next free sample index, linked by `resample_of`, asked for by the same uses), so the
    unparsable call and its cost stay in the ledger and the stages read the new one as the outcome.
    Calls that are not unparsable, or already have a fresh sample, are left alone. Returns how many new
    calls were queued."""
    calls = (
        LLMCall.objects.filter(pk__in=list(call_ids), status=LLMCall.Status.INVALID)
        .exclude(pk__in=LLMCall.objects.filter(resample_of__isnull=False).values("resample_of_id"))
        .order_by("pk")
    )
    made = 0
    for call in calls:
        request = PreparedRequest.from_json(call.request)
        depth = int(request.contract.get("resample_depth", 0)) + 1
        for step in range(1, RETRY_SAMPLE_TRIES + 1):
            fresh = request.with_sample(request.sample + step)
            if not LLMCall.objects.filter(request_hash=fresh.hash).exists():
                break
        else:
            raise RetortError(f"Call #{call.pk} has no free sample index left to ask again with.")
        fresh = replace(fresh, contract={**fresh.contract, "resample_depth": depth})
        new = LLMCall.objects.create(
            request_hash=fresh.hash,
            endpoint_id=call.endpoint_id,
            model=fresh.model,
            purpose=call.purpose,
            request=fresh.to_json(),
            sample_index=fresh.sample,
            resample_of=call,
        )
        uses = LLMCallUse.objects.filter(call=call).values_list("experiment_id", "round_id", "stage", "item")
        LLMCallUse.objects.bulk_create(
            [LLMCallUse(call=new, experiment_id=e, round_id=r, stage=s, item=i) for e, r, s, i in uses],
            ignore_conflicts=True,
        )
        made += 1
        if call.endpoint_id is not None:
            kick_endpoint(call.endpoint_id)
    return made


def llm_invalid_replies_to_review(*, call_ids: Sequence[int]) -> int:
    """Send calls whose replies stayed unparsable after every fresh sample to the human queue: one task
    per use (in the use's round), so each experiment reviews its own; a call nobody uses gets one task."""
    if not call_ids:
        return 0
    used = set(LLMCallUse.objects.filter(call_id__in=list(call_ids)).values_list("call_id", flat=True))
    made = _review_uses(LLMCallUse.objects.filter(call_id__in=list(used)))
    content_type = ContentType.objects.get_for_model(LLMCall)
    orphans = [
        ReviewTask(kind=ReviewTask.Kind.INVALID_REPLY, subject_type=content_type, subject_id=pk)
        for pk in call_ids
        if pk not in used
    ]
    return made + len(ReviewTask.objects.bulk_create(orphans, ignore_conflicts=True))


def _review_uses(uses) -> int:
    content_type = ContentType.objects.get_for_model(LLMCallUse)
    tasks = [
        ReviewTask(kind=ReviewTask.Kind.INVALID_REPLY, round_id=round_id, subject_type=content_type, subject_id=pk)
        for pk, round_id in uses.values_list("pk", "round_id")
    ]
    return len(ReviewTask.objects.bulk_create(tasks, ignore_conflicts=True))


# --- holds --------------------------------------------------------------------------------------------
@transaction.atomic
def llm_holds_place(*, experiment_ids: Sequence[int], reason: str, notify: bool = True) -> set[int]:
    """Stop sending calls for these experiments (bad credentials, a rejected request, the budget), with a
    reason a person can act on. The gateway does not change the experiments' states: with `notify` it
    asks their owner, the experiments app, through `experiment_hold_requested`."""
    ids = {int(pk) for pk in experiment_ids if pk is not None}
    if not ids:
        return ids
    reason = reason[:2000]
    active = LLMHold.objects.filter(experiment_id__in=ids, released_at=None)
    held = set(active.values_list("experiment_id", flat=True))
    active.update(reason=reason)
    LLMHold.objects.bulk_create([LLMHold(experiment_id=pk, reason=reason) for pk in ids - held], ignore_conflicts=True)
    if notify:
        for pk in sorted(ids):
            experiment_hold_requested.send(sender=LLMHold, experiment_id=pk, reason=reason)
    return ids


@transaction.atomic
def llm_holds_release(*, experiment_id: int) -> int:
    """Send the experiment's calls again (its owner resumed it): wake the runners that have its calls."""
    released = LLMHold.objects.filter(experiment_id=experiment_id, released_at=None).update(released_at=timezone.now())
    endpoints = (
        LLMCall.objects.filter(
            status=LLMCall.Status.PENDING,
            pk__in=LLMCallUse.objects.filter(experiment_id=experiment_id).values("call_id"),
        )
        .exclude(endpoint_id=None)
        .values_list("endpoint_id", flat=True)
        .distinct()
    )
    for endpoint_id in sorted(set(endpoints)):
        kick_endpoint(endpoint_id)
    return released


# --- test connection ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str
    latency_ms: int | None = None


def llm_endpoint_test(*, endpoint: LLMEndpoint) -> ConnectionCheck:
    """Make one tiny call now, in this process, and say whether it worked. The message never holds the
    key: only the variable's name, the HTTP status and the provider's words with keys masked."""
    if endpoint.is_offline:
        return _offline_check(endpoint)
    config = endpoint_config(endpoint)
    body = {
        **config.default_params,
        "model": endpoint.model,
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "Reply with the word OK."}],
    }
    started = time.perf_counter()
    result = run_sync(lambda: call_once(config, body))
    latency = int((time.perf_counter() - started) * 1000)
    _ledger_connection_test(endpoint, body, result, latency)
    if result.ok:
        cost = config.cost(result.prompt_tokens, result.completion_tokens)
        used = f"{result.prompt_tokens}+{result.completion_tokens} tokens, ${cost:.6f}"
        message = f"Connected: {endpoint.model} answered in {latency} ms ({used})."
        return ConnectionCheck(True, message, latency)
    error = redact_env(result.error or result.status, endpoint.api_key_env)
    llm_endpoint_record_error(endpoint_id=endpoint.pk, error=error)
    return ConnectionCheck(False, f"Failed: {error}", latency)


def _ledger_connection_test(endpoint: LLMEndpoint, body: dict, result, latency_ms: int) -> None:
    # Even a one-token ping is a paid call, so it goes in the ledger. Its sample index is the time, so
    # the cache never answers a connection test from an earlier one.
    request = PreparedRequest(
        model=body["model"],
        messages=body["messages"],
        params={k: v for k, v in body.items() if k not in ("model", "messages")},
        sample=time.time_ns(),
    )
    config = endpoint_config(endpoint)
    LLMCall.objects.create(
        request_hash=request.hash,
        endpoint=endpoint,
        model=endpoint.model,
        purpose="connection_test",
        request=request.to_json(),
        sample_index=0,
        reply=result.content,
        finish_reason=result.finish_reason,
        status=LLMCall.Status.OK if result.ok else LLMCall.Status.FAILED,
        error=redact_env(result.error, endpoint.api_key_env),
        attempts=result.attempts,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        cost=config.cost(result.prompt_tokens, result.completion_tokens),
        latency_ms=latency_ms,
        http_status=result.http_status,
        finished_at=timezone.now(),
    )


def _offline_check(endpoint: LLMEndpoint) -> ConnectionCheck:
    if endpoint.backend == LLMEndpoint.Backend.LOCAL_CLASSIFIER:
        return ConnectionCheck(True, "Offline: the local task classifier loads on the llm worker at first use.")
    dataset = endpoint.offline_dataset
    if dataset is None:
        return ConnectionCheck(False, "No offline dataset is set.")
    instructions = dataset.instructions
    if endpoint.backend == LLMEndpoint.Backend.RETRIEVAL_GENERATOR:
        count = instructions.count()
        return ConnectionCheck(count > 0, f"Offline: {count} reserve instructions in {dataset.name}.")
    count = instructions.exclude(reference_output="").count()
    judge = endpoint.backend == LLMEndpoint.Backend.SIMILARITY_JUDGE
    what = "reference answers" if judge else "recorded answers"
    return ConnectionCheck(count > 0, f"Offline: {count} {what} in {dataset.name}.")
