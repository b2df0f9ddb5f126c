"""style: the teacher's answer to every item of the round's train pool (selected seeds and accepted
expansions) in TAPIR's style for its task category: chain of thought for Math and Reasoning, commented
code for Code Generation and Code Debug, detailed otherwise (`response_style`).

params.mode (the config's `style`): "rewrite" sends the plain teacher answer through the style's
rewrite_* template (Response role rewrite, linked to the answer it rewrites); "answer" asks for the
styled answer at once with the style's answer_* template (Response role teacher). Either way the
Response carries the style, and the round's snapshot trains on these.
"""

from collections import Counter

from apps.datasets.models import Instruction
from apps.experiments.selectors import pool_instruction_ids
from apps.experiments.stages.base import Context, GatewayMixin, Outcome, StageKind
from apps.experiments.stages.resample import effective_labels
from apps.judging.models import Response
from apps.llm.models import LLMCall
from apps.llm.selectors import llm_call_template, llm_request_for
from workers.algorithms.task_vocabulary import UnknownTaskLabel
from workers.llm.prompts import STYLE_TEMPLATES, get_template, style_for_task_type

ANSWER_TEMPLATES = {style: template.replace("rewrite_", "answer_", 1) for style, template in STYLE_TEMPLATES.items()}


def item_styles(ctx: Context, instructions: dict[int, Instruction]) -> dict[int, str]:
    """instruction -> style, from the experiment's effective task label, else the instruction's own
    category (an expansion carries its seed's); no usable category means the detailed style."""
    labels = effective_labels(ctx, list(instructions))
    out = {}
    for pk, instruction in instructions.items():
        category = labels.get(pk) or instruction.task_category
        try:
            out[pk] = style_for_task_type(category)
        except UnknownTaskLabel:
            out[pk] = style_for_task_type("")
    return out


class StyleStage(GatewayMixin, StageKind):
    name = "style"
    uses_calls = True

    def _mode(self, ctx: Context) -> str:
        return ctx.run.params.get("mode") or ctx.params.get("style", "rewrite")

    def _role(self, ctx: Context) -> str:
        return Response.Role.REWRITE if self._mode(ctx) == "rewrite" else Response.Role.TEACHER

    def start(self, ctx: Context) -> None:
        ctx.run.total = len(
            pool_instruction_ids(experiment_id=ctx.experiment.pk, pool="train", round_index=ctx.round.index)
        )

    def units(self, ctx: Context, after: int, limit: int) -> list[int]:
        return pool_instruction_ids(
            experiment_id=ctx.experiment.pk, pool="train", round_index=ctx.round.index, after=after, limit=limit
        )

    def _plain(self, ctx: Context, ids: list[int]) -> dict[int, Response]:
        return {
            r.instruction_id: r
            for r in Response.objects.filter(round=ctx.round, role="teacher", style="", instruction_id__in=ids)
        }

    def process(self, ctx: Context, ids: list[int]) -> None:
        endpoint = ctx.endpoint("teacher")
        instructions = Instruction.objects.in_bulk(ids)
        styles = item_styles(ctx, instructions)
        rewrite = self._mode(ctx) == "rewrite"
        plain = self._plain(ctx, ids) if rewrite else {}
        keyed = []
        for pk in ids:
            instruction, style = instructions[pk], styles[pk]
            variables = {"instruction": instruction.text, "input": instruction.input}
            if rewrite:
                if pk not in plain:
                    continue  # the teacher gave no plain answer; collect counts it as failed
                variables["answer"] = plain[pk].text
            template = get_template((STYLE_TEMPLATES if rewrite else ANSWER_TEMPLATES)[style])
            keyed.append((ctx.item(pk, style), llm_request_for(endpoint, template, variables)))
        self.enqueue(ctx, endpoint, "teacher", keyed)

    def collect(self, ctx: Context, ids: list[int]) -> None:
        instructions = Instruction.objects.in_bulk(ids)
        styles = item_styles(ctx, instructions)
        plain = self._plain(ctx, ids)
        finals = self.finals(ctx, [ctx.item(pk, styles[pk]) for pk in ids])
        endpoint = ctx.endpoint("teacher")
        rows = []
        for pk in ids:
            call = finals.get(ctx.item(pk, styles[pk]))
            if call is None or call.status != LLMCall.Status.OK:
                ctx.run.failed += 1
                continue
            template_id, version = llm_call_template(call)
            rows.append(
                Response(
                    instruction_id=pk,
                    role=self._role(ctx),
                    round=ctx.round,
                    stage=ctx.run.name,
                    style=styles[pk],
                    rewrites=plain.get(pk) if self._role(ctx) == Response.Role.REWRITE else None,
                    model=call.model,
                    endpoint=endpoint,
                    llm_call=call,
                    text=call.reply,
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
        styles = Counter(Response.objects.filter(round=ctx.round, stage=ctx.run.name).values_list("style", flat=True))
        ctx.round.metrics = {**ctx.round.metrics, "styles": dict(sorted(styles.items()))}
        ctx.round.save(update_fields=["metrics", "updated_at"])
        return Outcome(done=True)
