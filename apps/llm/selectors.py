"""Reads for endpoints, calls, cost roll-ups, budgets and estimates."""

import os
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Avg, Count, Q, QuerySet, Sum

from apps.experiments.models import Experiment
from apps.llm.models import LLMCall, LLMEndpoint
from workers.llm import tokens
from workers.llm.prompts import PromptTemplate, build_request
from workers.llm.requests import PreparedRequest
from workers.llm.types import EndpointConfig

FINISHED = (LLMCall.Status.OK, LLMCall.Status.INVALID, LLMCall.Status.FAILED)


def endpoint_list() -> QuerySet[LLMEndpoint]:
    return LLMEndpoint.objects.select_related("offline_dataset")


def endpoint_config(endpoint: LLMEndpoint) -> EndpointConfig:
    """The Django-free description of an endpoint the client works from. It names the key's variable;
    the key itself is read from the environment by the client, on the worker, at call time."""
    return EndpointConfig(
        name=endpoint.name,
        base_url=endpoint.base_url,
        model=endpoint.model,
        api_key_env=endpoint.api_key_env,
        backend=str(endpoint.backend),
        max_concurrency=endpoint.max_concurrency,
        requests_per_minute=endpoint.requests_per_minute,
        tokens_per_minute=endpoint.tokens_per_minute,
        timeout_s=endpoint.timeout_s,
        price_input_per_mtok=endpoint.price_input_per_mtok,
        price_output_per_mtok=endpoint.price_output_per_mtok,
        default_params=dict(endpoint.default_params or {}),
    )


def llm_request_for(
    endpoint: LLMEndpoint,
    template: PromptTemplate,
    variables: dict,
    *,
    params: dict | None = None,
    sample: int = 0,
    contract: dict | None = None,
) -> PreparedRequest:
    """A request for this endpoint from a prompt template, with the endpoint's model, backend and
    sampling defaults, exactly as it will be sent (and hashed)."""
    return build_request(
        template,
        variables,
        model=endpoint.model,
        params=params,
        defaults=endpoint.default_params,
        backend=endpoint.backend,
        sample=sample,
        contract=contract,
    )


def llm_call_finals(call_ids: list[int]) -> dict[int, LLMCall]:
    """For each call, the last call of its chain of fresh samples (itself when it was never resampled):
    what a stage should read as the outcome of the request it made."""
    current = {cid: cid for cid in call_ids}
    while True:
        nexts = dict(
            LLMCall.objects.filter(resample_of_id__in=set(current.values()))
            .order_by("id")
            .values_list("resample_of_id", "id")
        )
        moved = {start: nexts[now] for start, now in current.items() if now in nexts}
        if not moved:
            break
        current.update(moved)
    rows = LLMCall.objects.in_bulk(set(current.values()))
    return {start: rows[final] for start, final in current.items() if final in rows}


# --- roll-ups ---------------------------------------------------------------------------------------
_ROLLUP = dict(
    calls=Count("id"),
    ok=Count("id", filter=Q(status=LLMCall.Status.OK)),
    invalid=Count("id", filter=Q(status=LLMCall.Status.INVALID)),
    failed=Count("id", filter=Q(status=LLMCall.Status.FAILED)),
    pending=Count("id", filter=Q(status=LLMCall.Status.PENDING)),
    prompt_tokens=Sum("prompt_tokens"),
    completion_tokens=Sum("completion_tokens"),
    cost=Sum("cost"),
    avg_latency_ms=Avg("latency_ms"),
)


def _clean(row: dict) -> dict:
    for key in ("prompt_tokens", "completion_tokens"):
        row[key] = row.get(key) or 0
    row["cost"] = row.get("cost") or Decimal(0)
    row["tokens"] = row["prompt_tokens"] + row["completion_tokens"]
    return row


def cost_rollup_by_stage(*, experiment_id: int) -> list[dict]:
    """One row per (round, stage) of the experiment: call counts by status, tokens, cost, latency."""
    rows = (
        LLMCall.objects.filter(experiment_id=experiment_id)
        .values("round_id", "round__index", "stage")
        .annotate(**_ROLLUP)
        .order_by("round__index", "stage")
    )
    return [_clean(dict(row)) for row in rows]


def cost_rollup_by_round(*, experiment_id: int) -> list[dict]:
    rows = (
        LLMCall.objects.filter(experiment_id=experiment_id)
        .values("round_id", "round__index")
        .annotate(**_ROLLUP)
        .order_by("round__index")
    )
    return [_clean(dict(row)) for row in rows]


def cost_rollup_experiment(*, experiment_id: int) -> dict:
    return _clean(dict(LLMCall.objects.filter(experiment_id=experiment_id).aggregate(**_ROLLUP)))


def cost_rollup_experiments() -> list[dict]:
    """Spend per experiment that has any calls, for the overview page."""
    rows = (
        LLMCall.objects.filter(experiment__isnull=False)
        .values("experiment_id", "experiment__name")
        .annotate(**_ROLLUP)
        .order_by("-experiment_id")
    )
    return [_clean(dict(row)) for row in rows]


@dataclass(frozen=True)
class Spend:
    usd: Decimal
    tokens: int


def experiment_spend(*, experiment_id: int) -> Spend:
    """What the experiment's finished calls cost. Calls served from another experiment's cache cost this
    one nothing and are not counted."""
    agg = LLMCall.objects.filter(experiment_id=experiment_id, status__in=FINISHED).aggregate(
        cost=Sum("cost"), p=Sum("prompt_tokens"), c=Sum("completion_tokens")
    )
    return Spend(agg["cost"] or Decimal(0), (agg["p"] or 0) + (agg["c"] or 0))


# --- estimates ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostEstimate:
    calls: int
    prompt_tokens: int
    expected_completion_tokens: int
    max_completion_tokens: int
    expected_cost: Decimal
    max_cost: Decimal
    method: str  # how prompt tokens were counted: "tiktoken:<encoding>" or "approximation"
    completion_basis: str  # "history" (mean of past replies) or "half the limit"

    @property
    def expected_tokens(self) -> int:
        return self.prompt_tokens + self.expected_completion_tokens

    @property
    def max_tokens(self) -> int:
        return self.prompt_tokens + self.max_completion_tokens


def mean_completion_tokens(*, model: str, purpose: str) -> float | None:
    """The mean reply length of past successful calls of this kind, if there are enough of them."""
    agg = LLMCall.objects.filter(model=model, purpose=purpose, status=LLMCall.Status.OK).aggregate(
        n=Count("id"), mean=Avg("completion_tokens")
    )
    return float(agg["mean"]) if agg["n"] and agg["n"] >= 5 else None


def estimate_requests(requests: list[PreparedRequest], endpoint: LLMEndpoint, *, purpose: str = "") -> CostEstimate:
    """The cost of sending these requests to the endpoint: prompt tokens counted (tiktoken or the
    approximation), reply tokens taken from history when there is some, else half the reply limit; the
    maximum assumes every reply runs to its limit."""
    prompt = expected = bound = 0
    history = mean_completion_tokens(model=endpoint.model, purpose=purpose) if purpose else None
    for request in requests:
        est = tokens.estimate(request.messages, request.params, request.model, expected_completion=history)
        prompt += est.prompt_tokens
        expected += est.expected_completion_tokens
        bound += est.max_completion_tokens
    price_in, price_out = endpoint.price_input_per_mtok, endpoint.price_output_per_mtok
    return CostEstimate(
        calls=len(requests),
        prompt_tokens=prompt,
        expected_completion_tokens=expected,
        max_completion_tokens=bound,
        expected_cost=tokens.cost(prompt, expected, price_in, price_out),
        max_cost=tokens.cost(prompt, bound, price_in, price_out),
        method=tokens.counting_method(endpoint.model),
        completion_basis="history" if history else "half the limit",
    )


def estimate_pending(*, experiment_id: int, stage: str | None = None, round_id: int | None = None) -> list[dict]:
    """Estimates for the calls of an experiment still waiting to be sent, per endpoint and purpose:
    the cost of a stage before it starts, once its calls are queued."""
    qs = LLMCall.objects.filter(experiment_id=experiment_id, status=LLMCall.Status.PENDING)
    if stage is not None:
        qs = qs.filter(stage=stage)
    if round_id is not None:
        qs = qs.filter(round_id=round_id)
    groups: dict[tuple[int, str], list[PreparedRequest]] = {}
    for endpoint_id, purpose, request in qs.values_list("endpoint_id", "purpose", "request").iterator(2000):
        groups.setdefault((endpoint_id, purpose), []).append(PreparedRequest.from_json(request))
    endpoints = LLMEndpoint.objects.in_bulk({endpoint_id for endpoint_id, _ in groups})
    out = []
    for (endpoint_id, purpose), requests in groups.items():
        endpoint = endpoints.get(endpoint_id)
        if endpoint is not None:
            out.append(
                {
                    "endpoint": endpoint,
                    "purpose": purpose,
                    "estimate": estimate_requests(requests, endpoint, purpose=purpose),
                }
            )
    return out


@dataclass(frozen=True)
class BudgetStatus:
    budget_usd: Decimal | None
    budget_tokens: int | None
    spent: Spend
    pending_expected_usd: Decimal
    pending_max_usd: Decimal
    pending_max_tokens: int

    @property
    def usd_fraction(self) -> float | None:
        return float(self.spent.usd / self.budget_usd) if self.budget_usd else None

    @property
    def tokens_fraction(self) -> float | None:
        return self.spent.tokens / self.budget_tokens if self.budget_tokens else None


def experiment_budget_status(*, experiment: Experiment) -> BudgetStatus:
    pending = estimate_pending(experiment_id=experiment.pk)
    return BudgetStatus(
        budget_usd=experiment.budget_usd,
        budget_tokens=experiment.budget_tokens,
        spent=experiment_spend(experiment_id=experiment.pk),
        pending_expected_usd=sum((p["estimate"].expected_cost for p in pending), Decimal(0)),
        pending_max_usd=sum((p["estimate"].max_cost for p in pending), Decimal(0)),
        pending_max_tokens=sum(p["estimate"].max_tokens for p in pending),
    )


def endpoint_usage(*, endpoint_id: int) -> dict:
    return _clean(dict(LLMCall.objects.filter(endpoint_id=endpoint_id).aggregate(**_ROLLUP)))


def endpoint_key_is_set(endpoint: LLMEndpoint) -> bool | None:
    """Whether the key's variable is set in this (web) process; None when the endpoint needs no key.
    Workers may differ: the page says so."""
    return bool(os.environ.get(endpoint.api_key_env)) if endpoint.api_key_env else None


def call_problems(*, experiment_id: int, limit: int = 50) -> list[LLMCall]:
    """The latest calls of an experiment that did not produce a usable reply."""
    return list(
        LLMCall.objects.filter(experiment_id=experiment_id, status__in=[LLMCall.Status.INVALID, LLMCall.Status.FAILED])
        .only("id", "status", "stage", "purpose", "error", "http_status", "sample_index", "created_at")
        .order_by("-id")[:limit]
    )


def llm_call_template(call: LLMCall) -> tuple[str, int | None]:
    """The prompt template (id, version) a call was made from, for the Response or Judgment that stores
    its reply; ("", None) for a call not made from a template."""
    template = (call.request or {}).get("template") or {}
    return template.get("id", ""), template.get("version")
