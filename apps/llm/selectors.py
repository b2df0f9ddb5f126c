"""Reads for endpoints, calls, cost roll-ups, budgets and estimates.

Per-experiment figures are counted over the experiment's uses of calls (LLMCallUse): spend over the uses
it was charged for, costs saved over the uses served from the ledger. The experiment's own fields (name,
status, budget) are read across those relations; the gateway imports nothing from the experiments app.
"""

from dataclasses import dataclass, replace
from decimal import Decimal

from django.db.models import Avg, Count, F, Q, QuerySet, Sum

from apps.llm.models import ClassifierExample, ClassifierVersion, LLMCall, LLMCallUse, LLMEndpoint, LLMHold
from workers.llm import keys, tokens
from workers.llm.prompts import PromptTemplate, build_request
from workers.llm.requests import PreparedRequest, endpoint_identity
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


def llm_endpoint_identity(endpoint: LLMEndpoint, *, head: bool = True) -> dict:
    """What answers this endpoint's requests, for the cache key (see workers/llm/requests.py). For the local
    task classifier, once a retrained version is ready, the sha256 of its head (`head`): its answers are
    then new calls, not the older head's from the ledger, and the runner answers each request with the
    head its key names. `head=False` leaves that part out (what every request of the endpoint shares)."""
    identity = endpoint_identity(
        backend=str(endpoint.backend),
        base_url=endpoint.base_url,
        checkpoint=endpoint.checkpoint,
        dataset=endpoint.offline_dataset_id,
    )
    if head and endpoint.backend == LLMEndpoint.Backend.LOCAL_CLASSIFIER:
        sha = classifier_head_sha256()
        if sha:
            identity["head"] = sha
    return identity


def llm_request_for(
    endpoint: LLMEndpoint,
    template: PromptTemplate,
    variables: dict,
    *,
    params: dict | None = None,
    sample: int = 0,
    contract: dict | None = None,
) -> PreparedRequest:
    """A request for this endpoint from a prompt template, with the endpoint's model, backend, identity and
    sampling defaults, exactly as it will be sent (and hashed)."""
    request = build_request(
        template,
        variables,
        model=endpoint.model,
        params=params,
        defaults=endpoint.default_params,
        backend=endpoint.backend,
        sample=sample,
        contract=contract,
    )
    return replace(request, identity=llm_endpoint_identity(endpoint))


def llm_call_chains(call_ids: list[int]) -> dict[int, list[int]]:
    """For each call, the ids of its chain of fresh samples: itself, the sample that replaced it, and so
    on to the last one."""
    chains = {cid: [cid] for cid in call_ids}
    while True:
        tails = list({chain[-1] for chain in chains.values()})
        nexts: dict[int, int] = {}
        for start in range(0, len(tails), 2000):
            nexts.update(
                LLMCall.objects.filter(resample_of_id__in=tails[start : start + 2000])
                .order_by("-id")  # the first fresh sample wins if there are two
                .values_list("resample_of_id", "id")
            )
        moved = False
        for chain in chains.values():
            if chain[-1] in nexts and nexts[chain[-1]] not in chain:
                chain.append(nexts[chain[-1]])
                moved = True
        if not moved:
            return chains


def llm_call_finals(call_ids: list[int]) -> dict[int, LLMCall]:
    """For each call, the last call of its chain of fresh samples (itself when it was never resampled):
    what a stage should read as the outcome of the request it made."""
    current = {start: chain[-1] for start, chain in llm_call_chains(call_ids).items()}
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
_PAID = Q(paid=True)
_SERVED = Q(paid=False, call__status__in=FINISHED)
# The same over an experiment's uses: calls counted per use, money and tokens only where it paid.
_USE_ROLLUP = dict(
    calls=Count("id"),
    ok=Count("id", filter=Q(call__status=LLMCall.Status.OK)),
    invalid=Count("id", filter=Q(call__status=LLMCall.Status.INVALID)),
    failed=Count("id", filter=Q(call__status=LLMCall.Status.FAILED)),
    pending=Count("id", filter=Q(call__status=LLMCall.Status.PENDING)),
    # Calls that took more than one attempt (a rate limit, a server error, a timeout, a dropped connection).
    retried=Count("id", filter=Q(call__attempts__gt=1)),
    prompt_tokens=Sum("call__prompt_tokens", filter=_PAID),
    completion_tokens=Sum("call__completion_tokens", filter=_PAID),
    cost=Sum("call__cost", filter=_PAID),
    from_ledger=Count("id", filter=_SERVED),
    saved=Sum("call__cost", filter=_SERVED),
    avg_latency_ms=Avg("call__latency_ms"),
)


def _clean(row: dict) -> dict:
    for key in ("prompt_tokens", "completion_tokens"):
        row[key] = row.get(key) or 0
    row["cost"] = row.get("cost") or Decimal(0)
    row["saved"] = row.get("saved") or Decimal(0)
    row["tokens"] = row["prompt_tokens"] + row["completion_tokens"]
    return row


def _uses(experiment_id: int) -> QuerySet[LLMCallUse]:
    return LLMCallUse.objects.filter(experiment_id=experiment_id)


def cost_rollup_by_stage(*, experiment_id: int) -> list[dict]:
    """One row per (round, stage) of the experiment: uses by call status, what it paid (tokens, cost),
    what the ledger saved it, latency."""
    rows = (
        _uses(experiment_id)
        .values("round_id", "round__index", "stage")
        .annotate(**_USE_ROLLUP)
        .order_by("round__index", "stage")
    )
    return [_clean(dict(row)) for row in rows]


def cost_rollup_by_round(*, experiment_id: int) -> list[dict]:
    rows = _uses(experiment_id).values("round_id", "round__index").annotate(**_USE_ROLLUP).order_by("round__index")
    return [_clean(dict(row)) for row in rows]


def cost_rollup_experiment(*, experiment_id: int) -> dict:
    return _clean(dict(_uses(experiment_id).aggregate(**_USE_ROLLUP)))


def cost_rollup_experiments() -> list[dict]:
    """Spend and costs saved per experiment that has used the gateway, for the overview page."""
    rows = (
        LLMCallUse.objects.values(
            "experiment_id",
            name=F("experiment__name"),
            status=F("experiment__status"),
            budget_usd=F("experiment__budget_usd"),
            budget_tokens=F("experiment__budget_tokens"),
        )
        .annotate(**_USE_ROLLUP)
        .order_by("-experiment_id")
    )
    return [_clean(dict(row)) for row in rows]


def ledger_totals() -> dict:
    """Everything the ledger holds, and the part of it no experiment uses (scripts, connection tests)."""
    total = _clean(dict(LLMCall.objects.aggregate(**_ROLLUP)))
    total["unused"] = _clean(dict(LLMCall.objects.filter(uses__isnull=True).aggregate(**_ROLLUP)))
    return total


def llm_experiment(experiment_id: int) -> dict | None:
    """The experiment's name, status and budget, read across the gateway's own relations to it (its uses,
    else its holds); None for an experiment the gateway has never worked for."""
    fields = dict(
        name=F("experiment__name"),
        status=F("experiment__status"),
        status_reason=F("experiment__status_reason"),
        budget_usd=F("experiment__budget_usd"),
        budget_tokens=F("experiment__budget_tokens"),
        dataset_id=F("experiment__dataset_id"),
    )
    for model in (LLMCallUse, LLMHold):
        rows = list(model.objects.filter(experiment_id=experiment_id).values("experiment_id", **fields)[:1])
        if rows:
            return rows[0]
    return None


@dataclass(frozen=True)
class Spend:
    usd: Decimal
    tokens: int


def experiment_spend(*, experiment_id: int) -> Spend:
    """What the calls this experiment was charged for cost. Calls served from the ledger (asked for and
    paid by another experiment, or earlier) cost it nothing and are not counted."""
    agg = (
        _uses(experiment_id)
        .filter(paid=True, call__status__in=FINISHED)
        .aggregate(cost=Sum("call__cost"), p=Sum("call__prompt_tokens"), c=Sum("call__completion_tokens"))
    )
    return Spend(agg["cost"] or Decimal(0), (agg["p"] or 0) + (agg["c"] or 0))


def experiment_saved(*, experiment_id: int) -> Spend:
    """What the ledger saved this experiment: the cost of the finished calls it used without paying."""
    agg = (
        _uses(experiment_id)
        .filter(_SERVED)
        .aggregate(cost=Sum("call__cost"), p=Sum("call__prompt_tokens"), c=Sum("call__completion_tokens"))
    )
    return Spend(agg["cost"] or Decimal(0), (agg["p"] or 0) + (agg["c"] or 0))


def held_experiments() -> list[int]:
    return list(LLMHold.objects.filter(released_at=None).values_list("experiment_id", flat=True))


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
    uses = _uses(experiment_id)
    if stage is not None:
        uses = uses.filter(stage=stage)
    if round_id is not None:
        uses = uses.filter(round_id=round_id)
    qs = LLMCall.objects.filter(status=LLMCall.Status.PENDING, pk__in=uses.values("call_id"))
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


def experiment_budget_status(
    *, experiment_id: int, budget_usd: Decimal | None, budget_tokens: int | None
) -> BudgetStatus:
    """Spend and queued cost against the budget the experiments app holds for this experiment."""
    pending = estimate_pending(experiment_id=experiment_id)
    return BudgetStatus(
        budget_usd=budget_usd,
        budget_tokens=budget_tokens,
        spent=experiment_spend(experiment_id=experiment_id),
        pending_expected_usd=sum((p["estimate"].expected_cost for p in pending), Decimal(0)),
        pending_max_usd=sum((p["estimate"].max_cost for p in pending), Decimal(0)),
        pending_max_tokens=sum(p["estimate"].max_tokens for p in pending),
    )


def endpoint_usage(*, endpoint_id: int) -> dict:
    return _clean(dict(LLMCall.objects.filter(endpoint_id=endpoint_id).aggregate(**_ROLLUP)))


def endpoint_key_is_set(endpoint: LLMEndpoint) -> bool | None:
    """Whether the key's variable is set in this (web) process; None when the endpoint needs no key or
    names a variable that may not hold one (so this never tells whether some other variable is set).
    Workers may differ: the page says so."""
    if not endpoint.api_key_env or keys.refusal(endpoint.api_key_env):
        return None
    return bool(keys.read_key(endpoint.api_key_env))


def call_problems(*, experiment_id: int, limit: int = 50) -> list[LLMCallUse]:
    """The experiment's latest uses of calls that did not produce a usable reply (with their calls)."""
    return list(
        _uses(experiment_id)
        .filter(call__status__in=[LLMCall.Status.INVALID, LLMCall.Status.FAILED])
        .select_related("call")
        .only("id", "stage", "item", "call__id", "call__status", "call__purpose", "call__error", "call__sample_index")
        .order_by("-id")[:limit]
    )


def llm_call_template(call: LLMCall) -> tuple[str, int | None]:
    """The prompt template (id, version) a call was made from, for the Response or Judgment that stores
    its reply; ("", None) for a call not made from a template."""
    template = (call.request or {}).get("template") or {}
    return template.get("id", ""), template.get("version")


def classifier_head_sha256() -> str:
    """The sha256 of the newest ready local classifier head ("" while none is: the shipped head answers)."""
    return (
        ClassifierVersion.objects.filter(status=ClassifierVersion.Status.READY)
        .order_by("-id")
        .values_list("sha256", flat=True)
        .first()
        or ""
    )


@dataclass(frozen=True)
class ClassifierVersions:
    versions: list[ClassifierVersion]  # newest first
    in_use: ClassifierVersion | None  # the newest ready one: what new requests are answered by
    review_examples: int  # reviewers' labels recorded so far
    pending: bool  # a retraining is queued or running


def classifier_versions(*, limit: int = 10) -> ClassifierVersions:
    """The local task classifier's recent retrainings with their held-out accuracy, for the task-label
    queue and the classifier's endpoint page."""
    S = ClassifierVersion.Status
    versions = list(ClassifierVersion.objects.select_related("requested_by").order_by("-id")[:limit])
    in_use = next((v for v in versions if v.status == S.READY), None)
    if in_use is None:
        in_use = ClassifierVersion.objects.filter(status=S.READY).order_by("-id").first()
    return ClassifierVersions(
        versions=versions,
        in_use=in_use,
        review_examples=ClassifierExample.objects.filter(source=ClassifierExample.Source.REVIEW).count(),
        pending=any(v.status in (S.QUEUED, S.RUNNING) for v in versions),
    )
