"""Who answers an instruction: one interface, two ways to get the answers.

`EndpointAnswerer` asks an OpenAI-compatible endpoint through the gateway's ledger (the teacher, or a
served student: vLLM, Ollama, llama.cpp, the test server); `LocalStudent` has a gpu worker generate with
the round's latest checkpoint (apps.training's generation jobs). The answer stage only sees `submit`,
`outstanding` and `results`, so it never knows which it has.
"""

from dataclasses import dataclass
from decimal import Decimal

from apps.datasets.models import Instruction
from apps.experiments.machine import StageError
from apps.experiments.stages.base import Context, GatewayMixin
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.selectors import llm_call_template, llm_request_for
from apps.training.models import ACTIVE, Artifact, GenerationItem, GenerationJob, JobStatus, TrainingJob
from workers.llm.prompts import get_template, task_text


@dataclass(frozen=True)
class Answer:
    text: str
    model: str
    endpoint_id: int | None = None
    call: LLMCall | None = None
    checkpoint: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)
    template_id: str = ""
    template_version: int | None = None


class EndpointAnswerer(GatewayMixin):
    """Answers through the gateway: one ledger call per instruction, paid once."""

    def __init__(self, endpoint: LLMEndpoint, purpose: str, template: str = "teacher_answer"):
        self.endpoint, self.purpose, self.template = endpoint, purpose, get_template(template)

    def request(self, instruction: Instruction):
        variables = {"instruction": instruction.text, "input": instruction.input}
        return llm_request_for(self.endpoint, self.template, variables)

    def submit(self, ctx: Context, instructions: list[Instruction]) -> None:
        keyed = [(ctx.item(i.pk, self.purpose), self.request(i)) for i in instructions]
        self.enqueue(ctx, self.endpoint, self.purpose, keyed)

    def results(self, ctx: Context, instructions: list[Instruction]) -> dict[int, Answer | None]:
        finals = self.finals(ctx, [ctx.item(i.pk, self.purpose) for i in instructions])
        out: dict[int, Answer | None] = {}
        for instruction in instructions:
            call = finals.get(ctx.item(instruction.pk, self.purpose))
            if call is None or call.status != LLMCall.Status.OK:
                out[instruction.pk] = None
                continue
            template_id, version = llm_call_template(call)
            out[instruction.pk] = Answer(
                text=call.reply,
                model=call.model,
                endpoint_id=self.endpoint.pk,
                call=call,
                checkpoint=self.endpoint.checkpoint,
                prompt_tokens=call.prompt_tokens,
                completion_tokens=call.completion_tokens,
                cost=call.cost,
                template_id=template_id,
                template_version=version,
            )
        return out


class LocalStudent:
    """The student generates on a gpu worker with the newest checkpoint trained for the experiment (the base
    model before the first one), one generation job per batch."""

    purpose = "student"

    def __init__(self, base_model: str, params: dict | None = None):
        self.base_model, self.params = base_model, dict(params or {})

    @staticmethod
    def artifact(ctx: Context) -> Artifact | None:
        job = (
            TrainingJob.objects.filter(
                round__experiment=ctx.experiment, round__index__lte=ctx.round.index, status=JobStatus.SUCCEEDED
            )
            .order_by("-round__index", "-id")
            .first()
        )
        return Artifact.objects.filter(training_job=job).order_by("-id").first() if job else None

    def submit(self, ctx: Context, instructions: list[Instruction]) -> None:
        from apps.training.services import training_generation_enqueue

        jobs = ctx.run.state.setdefault("generation_jobs", {})
        batch = str(instructions[0].pk)
        if batch in jobs:  # this batch was queued before a crash: never twice
            return
        artifact = self.artifact(ctx)
        job = training_generation_enqueue(
            round_id=ctx.round.pk,
            artifact_id=artifact.pk if artifact else None,
            base_model=self.base_model,
            prompts=[(ctx.item(i.pk, "student"), task_text(i.text, i.input)) for i in instructions],
            params={"seed": ctx.seed, **self.params},
        )
        jobs[batch] = job.pk
        ctx.run.state["checkpoint"] = artifact.sha256 if artifact else ""

    def _jobs(self, ctx: Context) -> list[int]:
        return list(ctx.run.state.get("generation_jobs", {}).values())

    def outstanding(self, ctx: Context) -> int:
        jobs = GenerationJob.objects.filter(pk__in=self._jobs(ctx))
        broken = jobs.filter(status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).first()
        if broken is not None:
            raise StageError(f"Generation job #{broken.pk} {broken.status}: {broken.error or 'no reason given'}")
        return sum(max(1, job.prompts_count - job.done_count) for job in jobs.filter(status__in=ACTIVE))

    def results(self, ctx: Context, instructions: list[Instruction]) -> dict[int, Answer | None]:
        keys = {ctx.item(i.pk, "student"): i.pk for i in instructions}
        # An empty generation is the student's answer (a poor one, for the judge to score); only a prompt
        # never generated counts as missing.
        texts = dict(
            GenerationItem.objects.filter(
                job_id__in=self._jobs(ctx), key__in=list(keys), text__isnull=False
            ).values_list("key", "text")
        )
        checkpoint = ctx.run.state.get("checkpoint", "")
        return {
            pk: Answer(text=texts[key], model=self.base_model, checkpoint=checkpoint) if key in texts else None
            for key, pk in keys.items()
        }


def answerer_for(ctx: Context, role: str):
    """The teacher's endpoint; for the student, its served endpoint if the config names one, else local
    generation with the trained checkpoint."""
    if role == "teacher":
        endpoint = ctx.endpoint("teacher")
        if endpoint is None:
            raise StageError("The experiment has no teacher endpoint.")
        return EndpointAnswerer(endpoint, "teacher")
    endpoint = ctx.endpoint("student")
    if endpoint is not None:
        return EndpointAnswerer(endpoint, "student")
    student = ctx.config.get("student", {})
    return LocalStudent(student.get("model") or ctx.experiment.student_model, ctx.run.params.get("generation"))
