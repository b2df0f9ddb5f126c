"""What round 1 of a config would ask the LLMs, before anything is created or paid: calls, tokens and cost
per stage, with the requests the ledger already holds counted apart (they cost nothing)."""

from dataclasses import dataclass
from decimal import Decimal

from apps.datasets.models import Instruction
from apps.experiments.stages.rationale import rationale_request
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.selectors import estimate_requests, llm_request_for
from workers.llm.prompts import get_template

# Judge prompts hold the two answers, which do not exist yet: stand in a reply of about this many words
# (the recorded reference answer when the seed has one).
PLACEHOLDER_WORDS = 200


@dataclass(frozen=True)
class StageEstimate:
    stage: str
    role: str
    calls: int
    in_ledger: int
    prompt_tokens: int = 0
    expected_tokens: int = 0
    expected_cost: Decimal = Decimal(0)
    max_cost: Decimal = Decimal(0)
    note: str = ""


def _endpoint(resolved) -> LLMEndpoint | None:
    if resolved is None or resolved.local_classifier:
        return None
    if resolved.create is not None:
        return LLMEndpoint(**resolved.create)  # unsaved: only its identity and prices are read
    return resolved.endpoint


def _estimate(stage: str, role: str, endpoint: LLMEndpoint, requests: list, note: str = "") -> StageEstimate:
    finished = set(
        LLMCall.objects.filter(request_hash__in=[r.hash for r in requests])
        .exclude(status=LLMCall.Status.PENDING)
        .values_list("request_hash", flat=True)
    )
    new = [r for r in requests if r.hash not in finished]
    est = estimate_requests(new, endpoint, purpose=role) if new else None
    return StageEstimate(
        stage=stage,
        role=role,
        calls=len(requests),
        in_ledger=len(requests) - len(new),
        prompt_tokens=est.prompt_tokens if est else 0,
        expected_tokens=est.expected_tokens if est else 0,
        expected_cost=est.expected_cost if est else Decimal(0),
        max_cost=est.max_cost if est else Decimal(0),
        note=note,
    )


def estimate_lion_round_one(resolved) -> list[StageEstimate]:
    config = resolved.config
    params = config.params
    seed = (resolved.datasets.get("seed") or [(None, None)])[0][0]
    qs = Instruction.objects.filter(dataset=seed).order_by("pk")
    seeds = list(qs[: int(params["max_items"])] if params.get("max_items") else qs)
    endpoints = {role: _endpoint(r) for role, r in resolved.endpoints.items()}
    answer = get_template("teacher_answer")

    def answers(endpoint):
        return [llm_request_for(endpoint, answer, {"instruction": i.text, "input": i.input}) for i in seeds]

    out = [_estimate("teacher_train", "teacher", endpoints["teacher"], answers(endpoints["teacher"]))]
    out.append(StageEstimate("train", "student", 0, 0, note=f"trains {config.student.get('model')} on the answers"))
    if endpoints.get("student") is not None:
        out.append(_estimate("student_cache", "student", endpoints["student"], answers(endpoints["student"])))
    else:
        out.append(StageEstimate("student_cache", "student", 0, 0, note=f"{len(seeds)} answers generated locally"))
    out.append(
        StageEstimate("teacher_cache", "teacher", len(seeds), len(seeds), note="the same requests as teacher_train")
    )
    judge, placeholder = get_template("judge_pairwise"), " ".join(["answer"] * PLACEHOLDER_WORDS)
    requests = []
    for i in seeds:
        reply = i.reference_output or placeholder
        base = {"instruction": i.text, "input": i.input, "answer_1": reply, "answer_2": placeholder}
        requests += [llm_request_for(endpoints["judge"], judge, base)] * 2
    out.append(_estimate("judge", "judge", endpoints["judge"], requests, note="both orders; answers approximated"))
    n = int(params.get("new_per_round", 6000))
    generate = [get_template("generate_hard"), get_template("generate_easy")]
    requests = []
    for k in range(n if seeds else 0):  # which seeds are hard is not known yet: half of each, in turn
        s = seeds[k % len(seeds)]
        variables = {"instruction": s.text, "input": s.input}
        requests.append(llm_request_for(endpoints["generator"], generate[k % 2], variables, sample=k // len(seeds)))
    out.append(_estimate("generate", "generator", endpoints["generator"], requests, note=f"{n} new instructions"))
    return out


def _seed_items(resolved) -> list[Instruction]:
    seed = (resolved.datasets.get("seed") or [(None, None)])[0][0]
    qs = Instruction.objects.filter(dataset=seed).order_by("pk")
    cap = resolved.config.params.get("max_items")
    return list(qs[: int(cap)] if cap else qs)


def _answers(endpoint, items) -> list:
    answer = get_template("teacher_answer")
    return [llm_request_for(endpoint, answer, {"instruction": i.text, "input": i.input}) for i in items]


def _student(endpoints: dict, stage: str, items: list, model: str) -> StageEstimate:
    if endpoints.get("student") is not None:
        return _estimate(stage, "student", endpoints["student"], _answers(endpoints["student"], items))
    return StageEstimate(stage, "student", 0, 0, note=f"{len(items)} answers generated locally by {model}")


def _judge_both_orders(endpoint, items) -> StageEstimate:
    judge, placeholder = get_template("judge_pairwise"), " ".join(["answer"] * PLACEHOLDER_WORDS)
    requests = []
    for i in items:
        base = {"instruction": i.text, "input": i.input, "answer_2": placeholder}
        requests += [llm_request_for(endpoint, judge, {**base, "answer_1": i.reference_output or placeholder})] * 2
    return _estimate("judge", "judge", endpoint, requests, note="both orders; answers approximated")


def estimate_tapir_round_one(resolved) -> list[StageEstimate]:
    """TAPIR's first round. Which seeds are hard, their task labels and the resampled set are not known
    before the judge and the classifier have spoken: those stages are bounded from above and say so."""
    config, params = resolved.config, resolved.config.params
    seeds = _seed_items(resolved)
    endpoints = {role: _endpoint(r) for role, r in resolved.endpoints.items()}
    model = config.student.get("model")
    out = [_student(endpoints, "student_seeds", seeds, model)]
    out.append(_estimate("teacher_seeds", "teacher", endpoints["teacher"], _answers(endpoints["teacher"], seeds)))
    out.append(_judge_both_orders(endpoints["judge"], seeds))
    out.append(StageEstimate("classify", "classifier", 0, 0, note="the local classifier: no LLM call"))
    if endpoints.get("classifier") is not None:
        template = get_template("classify_task")
        requests = [llm_request_for(endpoints["classifier"], template, {"instruction": i.text}) for i in seeds]
        out.append(
            _estimate("classify_llm", "classifier", endpoints["classifier"], requests, note="at most: low confidence")
        )
    selected = min(int(params.get("seeds_per_round", 1000)), len(seeds))
    drawn = int(params.get("resample_total") or selected)
    expansions = drawn * int(params.get("expansions_per_seed", 1))
    template = get_template("expand_seed")
    requests = [
        llm_request_for(
            endpoints["generator"],
            template,
            {"instruction": s.text, "input": s.input, "task_type": "Others"},
            sample=k // max(1, len(seeds)),
        )
        for k, s in enumerate(seeds[k % len(seeds)] for k in range(expansions if seeds else 0))
    ]
    out.append(_estimate("expand", "generator", endpoints["generator"], requests, note=f"{expansions} expansions"))
    style = get_template("answer_detailed" if params.get("style") == "answer" else "rewrite_detailed")
    placeholder = " ".join(["answer"] * PLACEHOLDER_WORDS)
    styled = (seeds[:selected] + [seeds[k % len(seeds)] for k in range(expansions)]) if seeds else []
    requests = [
        llm_request_for(endpoints["teacher"], style, {"instruction": i.text, "input": i.input, "answer": placeholder})
        for i in styled
    ]
    out.append(_estimate("style", "teacher", endpoints["teacher"], requests, note="styles approximated as detailed"))
    out.append(StageEstimate("train", "student", 0, 0, note=f"trains {model} on the styled answers"))
    return out


def estimate_step_by_step_round_one(resolved) -> list[StageEstimate]:
    config = resolved.config
    labelled = [i for i in _seed_items(resolved) if i.gold_label]
    endpoint = _endpoint(resolved.endpoints["teacher"])
    requests = [rationale_request(endpoint, i, config.params) for i in labelled]
    return [
        _estimate("rationales", "teacher", endpoint, requests, note=f"{len(labelled)} labelled examples"),
        StageEstimate("train", "student", 0, 0, note=f"trains {config.student.get('model')} on predict/explain"),
    ]


def estimate_mos_round_one(resolved) -> list[StageEstimate]:
    config = resolved.config
    cap = config.params.get("max_items")
    items = []
    for role in ("skill", "target"):
        for dataset, _weight in resolved.datasets.get(role, []):
            qs = Instruction.objects.filter(dataset=dataset).order_by("pk")
            items += list(qs[: int(cap)] if cap else qs)
    out = []
    teacher = resolved.endpoints.get("teacher")
    if config.params.get("teacher_answers") and teacher is not None:
        endpoint = _endpoint(teacher)
        out.append(_estimate("teacher_answers", "teacher", endpoint, _answers(endpoint, items), note="every skill"))
    out.append(StageEstimate("train", "student", 0, 0, note=f"trains {config.student.get('model')} on {len(items)}"))
    return out


ESTIMATORS = {
    "lion": estimate_lion_round_one,
    "tapir": estimate_tapir_round_one,
    "step_by_step": estimate_step_by_step_round_one,
    "mos": estimate_mos_round_one,
}


def estimate_round_one(resolved) -> list[StageEstimate]:
    return ESTIMATORS[resolved.config.recipe](resolved)
