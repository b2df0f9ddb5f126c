"""expand: the generator writes new instructions from the resampled seeds, of the seed's task type and
about its difficulty (the expand_seed template), `expansions_per_seed` for each entry of the resample
plan; a seed drawn twice is asked with other sample indexes. Candidates go through the same kept novelty
filter as Lion's generate stage (ROUGE-L ≤ rouge_threshold against the seed pool, everything the
experiment generated and the candidates kept before them); the kept ones land in the experiment's own
dataset with their seed's task category and a Lineage of origin "expanded".

train_pool: the accepted expansions (after the generated gate; edits applied) join the round's train
pool beside the selected seeds, so the style stage and the snapshot see both.
"""

from django.db.models import Count

from apps.datasets.categories import instruction_category_set
from apps.datasets.formats.records import content_hash
from apps.datasets.models import Instruction
from apps.experiments.models import Lineage, PoolMember, StageRun
from apps.experiments.selectors import gate_decisions
from apps.experiments.stages.base import Context, Outcome, StageKind
from apps.experiments.stages.generate import SAMPLE_STRIDE, GenerateStage
from apps.llm.selectors import llm_request_for
from apps.reviews.models import ReviewTask, ReviewVerdict
from workers.llm.prompts import get_template

ORIGIN = Lineage.Origin.EXPANDED


class ExpandStage(GenerateStage):
    name = "expand"

    def start(self, ctx: Context) -> None:
        source = StageRun.objects.filter(round=ctx.round, kind="resample").first()
        entries = (source.state if source else {}).get("plan", [])
        per_seed = int(ctx.params.get("expansions_per_seed", 1))
        seen: dict[int, int] = {}
        plan, categories = [], {}
        for seed, category in entries:
            copy = seen.get(seed, 0)
            seen[seed] = copy + 1
            categories[str(seed)] = category
            plan += [[seed, ORIGIN, copy * per_seed + e] for e in range(per_seed)]
        plan.sort(key=lambda entry: (entry[2], entry[0]))
        ctx.run.state = {"plan": plan, "categories": categories, "seeds": len(seen)}
        ctx.run.total = len(plan)

    def process(self, ctx: Context, ids: list[int]) -> None:
        endpoint = ctx.endpoint("generator")
        template = get_template("expand_seed")
        categories = ctx.run.state["categories"]
        entries = [self._plan(ctx)[p - 1] for p in ids]
        seeds = Instruction.objects.in_bulk({seed for seed, _, _ in entries})
        keyed = []
        for position, (seed, _, k) in zip(ids, entries, strict=True):
            variables = {
                "instruction": seeds[seed].text,
                "input": seeds[seed].input,
                "task_type": categories[str(seed)],
            }
            request = llm_request_for(endpoint, template, variables, sample=k * SAMPLE_STRIDE)
            keyed.append((self._key(ctx, position), request))
        self.enqueue(ctx, endpoint, "generator", keyed)

    def finalize(self, ctx: Context) -> Outcome:
        # An expansion keeps its seed's task category: the generator was asked for that task type.
        categories = ctx.run.state.get("categories", {})
        by_category: dict[str, list[int]] = {}
        for pk, seed in Lineage.objects.filter(round=ctx.round, origin=ORIGIN).values_list("instruction_id", "seed_id"):
            by_category.setdefault(categories.get(str(seed), ""), []).append(pk)
        for category, pks in by_category.items():
            # Through the service, which keeps the owned dataset's category counts.
            instruction_category_set(instruction_ids=pks, category=category, only_blank=True)
        kept = sum(len(pks) for pks in by_category.values())
        ctx.round.metrics = {
            **ctx.round.metrics,
            "expansion": {"planned": ctx.run.total, "kept": kept, "rejected": ctx.run.state.get("rejected", 0)},
        }
        ctx.round.save(update_fields=["metrics", "updated_at"])
        return Outcome(done=True)


class TrainPoolStage(StageKind):
    name = "train_pool"

    def start(self, ctx: Context) -> None:
        ctx.run.total = Lineage.objects.filter(round=ctx.round, origin=ORIGIN).count()

    def units(self, ctx: Context, after: int, limit: int) -> list[int]:
        qs = Lineage.objects.filter(round=ctx.round, origin=ORIGIN, instruction_id__gt=after).order_by("instruction_id")
        return list(qs.values_list("instruction_id", flat=True)[:limit])

    def process(self, ctx: Context, ids: list[int]) -> None:
        decisions = gate_decisions(round_id=ctx.round.pk, kind=ReviewTask.Kind.GENERATED)
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
            members.append(
                PoolMember(
                    experiment=ctx.experiment,
                    pool=PoolMember.Pool.TRAIN,
                    instruction_id=pk,
                    joined_round=ctx.round.index,
                )
            )
            ctx.run.done += 1
        PoolMember.objects.bulk_create(members, batch_size=1000, ignore_conflicts=True)

    def finalize(self, ctx: Context) -> Outcome:
        counts = PoolMember.objects.filter(
            experiment=ctx.experiment, pool=PoolMember.Pool.TRAIN, joined_round=ctx.round.index
        ).aggregate(n=Count("pk"))
        ctx.round.metrics = {**ctx.round.metrics, "train_pool": counts["n"]}
        ctx.round.save(update_fields=["metrics", "updated_at"])
        return Outcome(done=True)
