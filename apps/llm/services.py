"""Writes for endpoints and the call ledger."""

import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from apps.core.errors import RetortError
from apps.experiments.models import Experiment
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.selectors import endpoint_config
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
    "api_key_env",
    "max_concurrency",
    "requests_per_minute",
    "tokens_per_minute",
    "timeout_s",
    "price_input_per_mtok",
    "price_output_per_mtok",
    "default_params",
    "offline_dataset",
)


def _check_endpoint(endpoint: LLMEndpoint) -> None:
    endpoint.full_clean()
    if endpoint.backend == LLMEndpoint.Backend.OPENAI and not endpoint.base_url:
        raise RetortError("An OpenAI-compatible endpoint needs a base URL.", field="base_url")
    if endpoint.is_offline and endpoint.offline_dataset_id is None:
        raise RetortError("An offline backend needs the dataset it answers from.", field="offline_dataset")


@transaction.atomic
def llm_endpoint_create(**fields) -> LLMEndpoint:
    unknown = set(fields) - set(ENDPOINT_FIELDS)
    if unknown:
        raise RetortError(f"Unknown endpoint fields: {', '.join(sorted(unknown))}.")
    endpoint = LLMEndpoint(**fields)
    _check_endpoint(endpoint)
    endpoint.save()
    return endpoint


@transaction.atomic
def llm_endpoint_update(*, endpoint: LLMEndpoint, **fields) -> LLMEndpoint:
    for name, value in fields.items():
        if name not in ENDPOINT_FIELDS:
            raise RetortError(f"Unknown endpoint field {name!r}.")
        setattr(endpoint, name, value)
    _check_endpoint(endpoint)
    endpoint.save()
    return endpoint


def llm_endpoint_record_error(*, endpoint_id: int, error: str) -> None:
    LLMEndpoint.objects.filter(pk=endpoint_id).update(last_error=error, last_error_at=timezone.now())


# --- the ledger ---------------------------------------------------------------------------------------
def _kick(endpoint_id: int) -> None:
    from apps.llm.tasks import process_pending_calls  # tasks import services: import late

    process_pending_calls.delay_on_commit(endpoint_id)


@transaction.atomic
def llm_calls_enqueue(
    *,
    endpoint: LLMEndpoint,
    requests: Sequence[PreparedRequest],
    purpose: str,
    experiment: Experiment | None = None,
    round=None,
    stage: str = "",
    kick: bool = True,
) -> list[LLMCall]:
    """Queue calls and return one LLMCall per request, in order. A request whose hash is already in the
    ledger is not queued again: its existing row is returned, finished or not, whichever experiment made
    it. Only a new sample index makes a new call."""
    if any(r.backend != endpoint.backend for r in requests):
        raise RetortError(f"These requests were prepared for another backend than {endpoint.name}'s.")
    by_hash: dict[str, PreparedRequest] = {}
    for request in requests:
        by_hash.setdefault(request.hash, request)
    hashes = list(by_hash)
    existing: dict[str, LLMCall] = {}
    for start in range(0, len(hashes), 2000):
        existing.update(LLMCall.objects.in_bulk(hashes[start : start + 2000], field_name="request_hash"))
    new_rows = [
        LLMCall(
            request_hash=h,
            endpoint=endpoint,
            model=r.model,
            purpose=purpose,
            request=r.to_json(),
            sample_index=r.sample,
            experiment=experiment,
            round=round,
            stage=stage,
        )
        for h, r in by_hash.items()
        if h not in existing
    ]
    # ignore_conflicts: another process may have queued the same request a moment ago; theirs stands.
    LLMCall.objects.bulk_create(new_rows, batch_size=1000, ignore_conflicts=True)
    missing = [row.request_hash for row in new_rows]
    for start in range(0, len(missing), 2000):
        existing.update(LLMCall.objects.in_bulk(missing[start : start + 2000], field_name="request_hash"))
    if kick and any(call.status == LLMCall.Status.PENDING for call in existing.values()):
        _kick(endpoint.pk)
    return [existing[r.hash] for r in requests]


@transaction.atomic
def llm_calls_retry_failed(
    *, experiment_id: int | None = None, endpoint_id: int | None = None, stage: str | None = None
) -> int:
    """Send calls that failed (retries spent, or a rejected request) once more: an operator's decision."""
    qs = LLMCall.objects.filter(status=LLMCall.Status.FAILED)
    if experiment_id is not None:
        qs = qs.filter(experiment_id=experiment_id)
    if endpoint_id is not None:
        qs = qs.filter(endpoint_id=endpoint_id)
    if stage is not None:
        qs = qs.filter(stage=stage)
    endpoints = set(qs.values_list("endpoint_id", flat=True))
    count = qs.update(status=LLMCall.Status.PENDING, error="", http_status=None)
    for pk in endpoints:
        if pk is not None:
            _kick(pk)
    return count


@transaction.atomic
def llm_experiments_pause(*, experiment_ids: Sequence[int], reason: str) -> int:
    """Pause experiments whose LLM work cannot go on (bad credentials, a rejected request, the budget).
    The experiments app owns the state machine; this is the gateway's one way to stop it, with a reason
    a person can act on."""
    return (
        Experiment.objects.filter(pk__in=list(experiment_ids))
        .exclude(status__in=[Experiment.Status.FINISHED, Experiment.Status.FAILED])
        .update(status=Experiment.Status.PAUSED, status_reason=reason[:2000], updated_at=timezone.now())
    )


def llm_invalid_replies_to_review(*, call_ids: Sequence[int]) -> int:
    """Send calls whose replies stayed unparsable after every fresh sample to the human queue."""
    if not call_ids:
        return 0
    content_type = ContentType.objects.get_for_model(LLMCall)
    rounds = dict(LLMCall.objects.filter(pk__in=list(call_ids)).values_list("pk", "round_id"))
    tasks = [
        ReviewTask(
            kind=ReviewTask.Kind.INVALID_REPLY, round_id=rounds.get(pk), subject_type=content_type, subject_id=pk
        )
        for pk in call_ids
    ]
    return len(ReviewTask.objects.bulk_create(tasks, ignore_conflicts=True))


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
