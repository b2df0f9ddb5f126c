"""answer: the teacher or the student answers every instruction of a pool (params: role, pool)."""

from apps.datasets.models import Instruction
from apps.experiments.answerers import EndpointAnswerer, answerer_for
from apps.experiments.selectors import pool_instruction_ids, pool_members
from apps.experiments.stages.base import Context, Outcome, StageKind
from apps.judging.models import Response


class AnswerStage(StageKind):
    name = "answer"
    uses_calls = True

    def _answerer(self, ctx: Context):
        return answerer_for(ctx, ctx.run.params["role"])

    def start(self, ctx: Context) -> None:
        pool = ctx.run.params["pool"]
        ctx.run.total = (
            pool_members(experiment_id=ctx.experiment.pk, pool=pool, round_index=ctx.round.index)
            .values("instruction_id")
            .distinct()
            .count()
        )

    def units(self, ctx: Context, after: int, limit: int) -> list[int]:
        return pool_instruction_ids(
            experiment_id=ctx.experiment.pk,
            pool=ctx.run.params["pool"],
            round_index=ctx.round.index,
            after=after,
            limit=limit,
        )

    def _instructions(self, ids: list[int]) -> list[Instruction]:
        rows = Instruction.objects.in_bulk(ids)
        return [rows[pk] for pk in ids if pk in rows]

    def process(self, ctx: Context, ids: list[int]) -> None:
        self._answerer(ctx).submit(ctx, self._instructions(ids))

    def outstanding(self, ctx: Context) -> int:
        return self._answerer(ctx).outstanding(ctx)

    def collects_early(self, ctx: Context) -> bool:
        # Answers from an endpoint come from finals; a local student's come from its generation jobs.
        return isinstance(self._answerer(ctx), EndpointAnswerer)

    def collect(self, ctx: Context, ids: list[int]) -> None:
        role = ctx.run.params["role"]
        answers = self._answerer(ctx).results(ctx, self._instructions(ids))
        rows = [
            Response(
                instruction_id=pk,
                role=role,
                round=ctx.round,
                stage=ctx.run.name,
                checkpoint=answer.checkpoint,
                model=answer.model,
                endpoint_id=answer.endpoint_id,
                llm_call=answer.call,
                text=answer.text,
                template_id=answer.template_id,
                template_version=answer.template_version,
                prompt_tokens=answer.prompt_tokens,
                completion_tokens=answer.completion_tokens,
                cost=answer.cost,
                request_hash=answer.call.request_hash if answer.call else "",
            )
            for pk, answer in answers.items()
            if answer is not None
        ]
        # One answer per (round, instruction, role): a teacher answer another stage of the round already
        # stored (the same ledger call) stands.
        Response.objects.bulk_create(rows, ignore_conflicts=True)
        missing = sum(1 for answer in answers.values() if answer is None)
        ctx.run.done += len(answers) - missing
        ctx.run.failed += missing

    def finalize(self, ctx: Context) -> Outcome:
        return Outcome(done=True)
