"""resample: the round's selected seeds drawn to the task ratios (`resample_by_task`: int(N × ratio) per
category, whole copies where a category is short), after the task_labels gate: a reviewer's edit is the
seed's label from then on (source review), a rejection leaves the seed out of the draw. The plan (seed,
category) in run.state is what the expand stage expands; counts per category go into round.metrics."""

from apps.experiments.machine import StageError
from apps.experiments.models import TaskLabel
from apps.experiments.selectors import gate_decisions
from apps.experiments.stages.base import Context, Outcome, StageKind
from apps.experiments.stages.classify import selected_ids
from apps.reviews.models import ReviewTask, ReviewVerdict
from workers.algorithms.resampling import TAPIR_TASK_RATIOS, ResamplingConfig, resample_by_task
from workers.algorithms.task_vocabulary import UnknownTaskLabel, to_task_category


def apply_label_reviews(ctx: Context) -> set[int]:
    """Store reviewers' edited labels as source `review`; returns the instructions whose label was rejected."""
    decisions = gate_decisions(round_id=ctx.round.pk, kind=ReviewTask.Kind.TASK_LABEL)
    if not decisions:
        return set()
    subjects = TaskLabel.objects.in_bulk(list(decisions))
    rejected = set()
    for label_id, verdict in decisions.items():
        label = subjects.get(label_id)
        if label is None:
            continue
        if verdict.decision == ReviewVerdict.Decision.REJECT:
            rejected.add(label.instruction_id)
        elif verdict.decision == ReviewVerdict.Decision.EDIT and verdict.edited_text.strip():
            try:
                category = to_task_category(verdict.edited_text)
            except UnknownTaskLabel as exc:
                raise StageError(f"A reviewer's task label for instruction #{label.instruction_id}: {exc}") from None
            TaskLabel.objects.update_or_create(
                experiment=ctx.experiment,
                instruction_id=label.instruction_id,
                source=TaskLabel.Source.REVIEW,
                defaults={"category": category, "confidence": None},
            )
    return rejected


def effective_labels(ctx: Context, ids: list[int]) -> dict[int, str]:
    """instruction -> the task category that counts (review > llm > local > imported)."""
    rank = {source: n for n, source in enumerate(TaskLabel.PRIORITY)}
    best: dict[int, tuple[int, str]] = {}
    for pk, source, category in TaskLabel.objects.filter(experiment=ctx.experiment, instruction_id__in=ids).values_list(
        "instruction_id", "source", "category"
    ):
        if pk not in best or rank[source] < best[pk][0]:
            best[pk] = (rank[source], category)
    return {pk: to_task_category(category) for pk, (_, category) in best.items()}


class ResampleStage(StageKind):
    name = "resample"

    def start(self, ctx: Context) -> None:
        rejected = apply_label_reviews(ctx)
        ids = selected_ids(ctx)
        labels = effective_labels(ctx, ids)
        usable = [pk for pk in ids if pk in labels and pk not in rejected]
        config = ResamplingConfig(
            ratios=dict(ctx.params.get("ratios") or TAPIR_TASK_RATIOS),
            total=ctx.params.get("resample_total"),
            seed=int(ctx.rng().integers(2**31)),
        )
        result = resample_by_task([labels[pk] for pk in usable], config)
        plan = [[usable[i], labels[usable[i]]] for i in result.indices]
        ctx.run.state = {"plan": plan}
        ctx.run.total = ctx.run.done = len(plan)
        ctx.round.metrics = {
            **ctx.round.metrics,
            "resampling": {
                "total": config.total if config.total is not None else len(usable),
                "by_category": {
                    name: {"available": d.available, "target": d.target, "drawn": d.drawn}
                    for name, d in result.categories.items()
                    if d.available or d.target
                },
                "short": result.short,
                "empty": result.empty,
                "missing": result.missing,
                "unlisted": result.unlisted,
                "rejected": len(rejected),
                "unlabelled": len([pk for pk in ids if pk not in labels]),
            },
        }
        ctx.round.save(update_fields=["metrics", "updated_at"])

    def finalize(self, ctx: Context) -> Outcome:
        return Outcome(done=True)
