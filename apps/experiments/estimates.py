"""What round 1 of a config would ask the LLMs, before anything is created or paid: calls, tokens and cost
per stage, with the requests the ledger already holds counted apart (they cost nothing)."""

from dataclasses import dataclass
from decimal import Decimal

from apps.datasets.models import Instruction
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


def estimate_round_one(resolved) -> list[StageEstimate]:
    recipe = resolved.config.recipe
    if recipe != "lion":
        raise ValueError(f"No estimate for recipe {recipe!r} yet.")
    return estimate_lion_round_one(resolved)
