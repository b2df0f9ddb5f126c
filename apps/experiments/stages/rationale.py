"""rationale: the teacher's few-shot chain of thought for each labelled example of the train pool, parsed
into a rationale and a label (distilling step-by-step; params: pool).

The prompt is `rationale_fewshot` with the few-shot set `params.examples`; its reply contract carries the
dataset kind (SVAMP answers must be arithmetic, NLI ones one of three classes) and, for multiple choice, the
item's `metadata.choices`, so the gateway resamples a reply it cannot read and then sends it to the review
queue. The item's own text and input fill the `instruction` and `input` variables too: the offline replay
teacher finds its record by them. A settled reply is parsed again with the project's one parser
(`workers.algorithms.step_by_step.parse_rationale`) into a Response (role rationale) with `rationale` and
`parsed_label`. Agreement with the gold label, and the drop of disagreements, are read from those rows
(apps.experiments.snapshot_items.kept_rationales); the counts go to `round.metrics["rationales"]`.
"""

from apps.datasets.models import Instruction
from apps.experiments.machine import StageError
from apps.experiments.selectors import pool_members
from apps.experiments.snapshot_items import dataset_kind, kept_rationales
from apps.experiments.stages.base import Context, GatewayMixin, Outcome, StageKind
from apps.judging.models import Response
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.selectors import llm_call_template, llm_request_for
from workers.algorithms.step_by_step import parse_rationale
from workers.llm.prompts import get_template

TEMPLATE = "rationale_fewshot"
VARIANT = "rationale"
LABEL_LENGTH = 500  # Response.parsed_label


def contract_options(instruction: Instruction, kind: str) -> dict:
    """The reply contract's options for one item: its dataset kind, and its choices or allowed labels."""
    options: dict = {"dataset": kind}
    metadata = instruction.metadata or {}
    choices, labels = metadata.get("choices"), metadata.get("labels")
    if kind in ("cqa", "generic") and isinstance(choices, list) and choices:
        options["choices"] = [str(choice) for choice in choices]
    elif isinstance(labels, list) and labels:
        options["labels"] = [str(label) for label in labels]
    return options


def rationale_request(endpoint: LLMEndpoint, instruction: Instruction, params: dict):
    kind = params.get("dataset_kind", "generic")
    question = instruction.text.strip()
    if instruction.input.strip():
        question = f"{question}\n{instruction.input.strip()}"
    variables = {
        "task_type": params.get("examples") or "generic",
        "question": f"Q: {question}",
        # What the offline replay backend matches its record on.
        "instruction": instruction.text,
        "input": instruction.input,
    }
    return llm_request_for(endpoint, get_template(TEMPLATE), variables, contract=contract_options(instruction, kind))


def labelled(ctx: Context):
    pool = ctx.run.params.get("pool", "train")
    members = pool_members(experiment_id=ctx.experiment.pk, pool=pool, round_index=ctx.round.index)
    return members.exclude(instruction__gold_label="")


class RationaleStage(GatewayMixin, StageKind):
    name = "rationale"
    uses_calls = True

    def start(self, ctx: Context) -> None:
        ctx.run.total = labelled(ctx).values("instruction_id").distinct().count()

    def units(self, ctx: Context, after: int, limit: int) -> list[int]:
        # Unlabelled items have nothing to check a rationale against: they are not asked.
        qs = labelled(ctx).filter(instruction_id__gt=after).order_by("instruction_id")
        return list(qs.values_list("instruction_id", flat=True).distinct()[:limit])

    def _instructions(self, ids: list[int]) -> list[Instruction]:
        rows = Instruction.objects.in_bulk(ids)
        return [rows[pk] for pk in ids if pk in rows]

    def process(self, ctx: Context, ids: list[int]) -> None:
        endpoint = ctx.endpoint("teacher")
        if endpoint is None:
            raise StageError("The experiment has no teacher endpoint to ask for rationales.")
        keyed = [(ctx.item(i.pk, VARIANT), rationale_request(endpoint, i, ctx.params)) for i in self._instructions(ids)]
        self.enqueue(ctx, endpoint, "teacher", keyed)

    def collect(self, ctx: Context, ids: list[int]) -> None:
        kind = dataset_kind(ctx.config)
        instructions = self._instructions(ids)
        finals = self.finals(ctx, [ctx.item(i.pk, VARIANT) for i in instructions])
        rows = []
        for instruction in instructions:
            call = finals.get(ctx.item(instruction.pk, VARIANT))
            parsed = None
            if call is not None and call.status == LLMCall.Status.OK:
                options = contract_options(instruction, kind)
                parsed = parse_rationale(kind, call.reply, labels=options.get("labels"), choices=options.get("choices"))
            # A failed or unreadable reply trains nothing (the gateway sent it to the review queue).
            if parsed is None or not parsed.ok or not parsed.label or len(parsed.label) > LABEL_LENGTH:
                ctx.run.failed += 1
                continue
            template_id, version = llm_call_template(call)
            rows.append(
                Response(
                    instruction_id=instruction.pk,
                    role=Response.Role.RATIONALE,
                    round=ctx.round,
                    stage=ctx.run.name,
                    model=call.model,
                    endpoint_id=call.endpoint_id,
                    llm_call=call,
                    text=call.reply,
                    rationale=parsed.rationale or "",
                    parsed_label=parsed.label,
                    template_id=template_id,
                    template_version=version,
                    prompt_tokens=call.prompt_tokens,
                    completion_tokens=call.completion_tokens,
                    cost=call.cost,
                    request_hash=call.request_hash,
                )
            )
            ctx.run.done += 1
        Response.objects.bulk_create(rows, ignore_conflicts=True)

    def finalize(self, ctx: Context) -> Outcome:
        parsed = Response.objects.filter(round=ctx.round, role=Response.Role.RATIONALE).count()
        agreed = kept = 0
        for _, _, agrees in kept_rationales(ctx.round):  # with drop_mismatched, the kept ones all agree
            kept += 1
            agreed += agrees
        ctx.round.metrics = {
            **ctx.round.metrics,
            "rationales": {
                "asked": ctx.run.total,
                "parsed": parsed,
                "invalid": ctx.run.total - parsed,
                "agreed": agreed,
                "mismatched": parsed - agreed,
                "dropped": parsed - kept,
                "kept": kept,
                "agreement": round(agreed / parsed, 4) if parsed else None,
            },
        }
        ctx.round.save(update_fields=["metrics", "updated_at"])
        return Outcome(done=True)
