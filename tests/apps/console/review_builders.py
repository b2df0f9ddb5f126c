"""Review tasks of every kind over real subject rows (judgments, responses, lineage, task labels, LLM call
uses) in the round of a real experiment, as the engine's stages and gates would leave them."""

import itertools

from django.contrib.contenttypes.models import ContentType

from apps.datasets.models import Instruction
from apps.experiments.models import Experiment, Lineage, Round, TaskLabel
from apps.judging.models import Judgment, Response
from apps.llm.models import LLMCall, LLMCallUse
from apps.reviews.models import ReviewTask
from tests.factories import DatasetFactory, InstructionFactory
from workers.llm.requests import PreparedRequest

_n = itertools.count(1)
KINDS = ("verdict", "rewrite", "generated", "rationale", "task_label", "invalid_reply", "answer")


def make_round(*, tau: float = 1.0, index: int = 1, experiment: Experiment | None = None) -> Round:
    if experiment is None:
        experiment = Experiment.objects.create(
            name=f"review-pages-{next(_n)}",
            recipe="lion",
            dataset=DatasetFactory(),
            status="waiting_review",
            config={"params": {"tau": tau, "hard_rule": "gap >= tau"}},
        )
    return Round.objects.create(experiment=experiment, index=index, status="waiting_review")


def _task(kind: str, round_: Round, subject, *, priority: int = 0, required: int = 1) -> ReviewTask:
    return ReviewTask.objects.create(
        kind=kind,
        round=round_,
        subject_type=ContentType.objects.get_for_model(subject),
        subject_id=subject.pk,
        priority=priority,
        required_reviews=required,
    )


def _instruction(round_: Round, text: str | None = None, **fields) -> Instruction:
    n = next(_n)
    return InstructionFactory(dataset=round_.experiment.dataset, text=text or f"Explain topic number {n}.", **fields)


def verdict_task(
    round_: Round,
    *,
    teacher: str = "The **teacher** explains it well.",
    student: str = "The student says less.",
    gap: float = 2.0,
    verdict: str = "hard",
    contested: bool = False,
    text: str | None = None,
    category: str = "",
    required: int = 1,
) -> ReviewTask:
    instruction = _instruction(round_, text, task_category=category)
    answers = [
        Response.objects.create(instruction=instruction, role=role, round=round_, model=model, text=body)
        for role, model, body in (("teacher", "teacher-big", teacher), ("student", "student-small", student))
    ]
    judgment = Judgment.objects.create(
        instruction=instruction,
        round=round_,
        teacher_response=answers[0],
        student_response=answers[1],
        judge_model="judge-strict",
        raw_teacher_first="Assistant 1 is better.\nScore of Assistant 1: 8\nScore of Assistant 2: 6",
        raw_student_first="Assistant 2 is better.\nScore of Assistant 1: 6\nScore of Assistant 2: 8",
        teacher_first_teacher_score=8,
        teacher_first_student_score=8 - gap,
        student_first_student_score=8 - gap,
        student_first_teacher_score=8,
        teacher_score=8,
        student_score=8 - gap,
        gap=gap,
        verdict=verdict,
        contested=contested,
    )
    return _task("verdict", round_, judgment, priority=2 if contested else 0, required=required)


def rewrite_task(
    round_: Round, *, original: str = "Add two and two to get four.", rewrite: str | None = None
) -> ReviewTask:
    instruction = _instruction(round_, task_category="Math")
    plain = Response.objects.create(instruction=instruction, role="teacher", round=round_, model="t", text=original)
    styled = Response.objects.create(
        instruction=instruction,
        role="rewrite",
        round=round_,
        model="t",
        style="chain_of_thought",
        rewrites=plain,
        text=rewrite or "First, take two. Then add two more to get four.",
    )
    return _task("rewrite", round_, styled)


def generated_task(round_: Round, *, origin: str = "hard", text: str | None = None) -> ReviewTask:
    seed = _instruction(round_, task_category="Writing")
    nearest = _instruction(round_)
    new = _instruction(round_, text or f"Write a poem about tide number {next(_n)}.", origin="generated")
    Lineage.objects.create(
        instruction=new,
        experiment=round_.experiment,
        round=round_,
        seed=seed,
        origin=origin,
        nearest=nearest,
        nearest_score=0.42,
    )
    return _task("generated", round_, new)


def rationale_task(round_: Round, *, label: str = "B", gold: str = "A") -> ReviewTask:
    instruction = _instruction(round_, input="Options: A, B", gold_label=gold)
    response = Response.objects.create(
        instruction=instruction,
        role="rationale",
        round=round_,
        model="t",
        text=f"Because of X. So the answer is {label}.",
        rationale="Because of X.",
        parsed_label=label,
    )
    return _task("rationale", round_, response, priority=0 if label == gold else 1)


def answer_task(round_: Round, *, text: str = "Paris is the capital of France.") -> ReviewTask:
    instruction = _instruction(round_)
    response = Response.objects.create(instruction=instruction, role="teacher", round=round_, model="t", text=text)
    return _task("answer", round_, response)


def task_label_task(round_: Round, *, category: str = "Writing") -> ReviewTask:
    instruction = _instruction(round_)
    label = TaskLabel.objects.create(
        experiment=round_.experiment, instruction=instruction, category=category, source="local", confidence=0.41
    )
    return _task("task_label", round_, label)


def invalid_reply_task(round_: Round, *, reply: str = "I think both are fine <b>really</b>.") -> ReviewTask:
    n = next(_n)
    request = PreparedRequest(model="judge-strict", messages=[{"role": "user", "content": f"Compare pair {n}."}])
    call = LLMCall.objects.create(
        request_hash=request.hash,
        model="judge-strict",
        purpose="judge",
        request=request.to_json(),
        reply=reply,
        status=LLMCall.Status.INVALID,
        error="The reply has no line 'Score of Assistant 1: <number>'.",
        attempts=3,
    )
    use = LLMCallUse.objects.create(
        call=call, experiment=round_.experiment, round=round_, stage="judge", item=f"judgment:{n}"
    )
    return _task("invalid_reply", round_, use)


BUILDERS = {
    "verdict": verdict_task,
    "rewrite": rewrite_task,
    "generated": generated_task,
    "rationale": rationale_task,
    "task_label": task_label_task,
    "invalid_reply": invalid_reply_task,
    "answer": answer_task,
}


def build(kind: str, round_: Round, **fields) -> ReviewTask:
    return BUILDERS[kind](round_, **fields)
