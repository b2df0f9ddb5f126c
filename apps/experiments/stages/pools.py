"""pools: Lion's pools move on. The round's accepted new instructions become the next round's train pool
and join the cache pool; the round's train pool leaves. A reviewer's rejection keeps an instruction out,
an edit changes its text first."""

from django.db.models import Count, Q

from apps.datasets.formats.records import content_hash
from apps.datasets.models import Instruction
from apps.experiments.models import Lineage, PoolMember
from apps.experiments.selectors import gate_decisions
from apps.experiments.stages.base import Context, Outcome, StageKind
from apps.reviews.models import ReviewTask, ReviewVerdict


class PoolsStage(StageKind):
    name = "pools"

    def start(self, ctx: Context) -> None:
        ctx.run.total = Lineage.objects.filter(round=ctx.round).count()

    def units(self, ctx: Context, after: int, limit: int) -> list[int]:
        qs = Lineage.objects.filter(round=ctx.round, instruction_id__gt=after).order_by("instruction_id")
        return list(qs.values_list("instruction_id", flat=True)[:limit])

    def process(self, ctx: Context, ids: list[int]) -> None:
        decisions = gate_decisions(round_id=ctx.round.pk, kind=ReviewTask.Kind.GENERATED)
        nxt = ctx.round.index + 1
        members = []
        for pk in ids:
            decision = decisions.get(pk)
            if decision is not None and decision.decision == ReviewVerdict.Decision.REJECT:
                ctx.run.failed += 1
                continue
            if (
                decision is not None
                and decision.decision == ReviewVerdict.Decision.EDIT
                and decision.edited_text.strip()
            ):
                text = decision.edited_text.strip()
                Instruction.objects.filter(pk=pk).update(text=text, content_hash=content_hash(text, ""))
            members += [
                PoolMember(experiment=ctx.experiment, pool=pool, instruction_id=pk, joined_round=nxt)
                for pool in (PoolMember.Pool.TRAIN, PoolMember.Pool.CACHE)
            ]
            ctx.run.done += 1
        PoolMember.objects.bulk_create(members, batch_size=1000, ignore_conflicts=True)

    def finalize(self, ctx: Context) -> Outcome:
        index = ctx.round.index
        PoolMember.objects.filter(
            experiment=ctx.experiment, pool=PoolMember.Pool.TRAIN, joined_round=index, left_round__isnull=True
        ).update(left_round=index + 1)
        counts = PoolMember.objects.filter(experiment=ctx.experiment).aggregate(
            next_train=Count("pk", filter=Q(pool="train", joined_round=index + 1)),
            cache=Count("pk", filter=Q(pool="cache", joined_round__lte=index + 1, left_round__isnull=True)),
        )
        ctx.round.metrics = {**ctx.round.metrics, "pools": counts}
        ctx.round.save(update_fields=["metrics", "updated_at"])
        return Outcome(done=True)
