"""Reads for experiments: pools, gate decisions, effective labels, progress."""

from django.db.models import Q, QuerySet

from apps.experiments.models import Experiment, PoolMember, Round, StageRun, TaskLabel
from apps.reviews.models import ReviewTask


def pool_members(*, experiment_id: int, pool: str, round_index: int) -> QuerySet[PoolMember]:
    """A pool as it stands in a round. The train pool of round r is what joined it in round r; the cache
    pool holds everything that joined by round r and has not left."""
    qs = PoolMember.objects.filter(experiment_id=experiment_id, pool=pool)
    if pool == PoolMember.Pool.TRAIN:
        return qs.filter(joined_round=round_index)
    return qs.filter(joined_round__lte=round_index).filter(Q(left_round__isnull=True) | Q(left_round__gt=round_index))


def pool_instruction_ids(*, experiment_id: int, pool: str, round_index: int, after: int = 0, limit: int | None = None):
    qs = (
        pool_members(experiment_id=experiment_id, pool=pool, round_index=round_index)
        .filter(instruction_id__gt=after)
        .order_by("instruction_id")
        .values_list("instruction_id", flat=True)
        .distinct()
    )
    return list(qs[:limit] if limit else qs)


def gate_decisions(*, round_id: int, kind: str) -> dict[int, ReviewTask]:
    """The resolved review tasks of a gate by their subject id: each task's `.decision`, `.edited_text` and
    `.note` are what its reviewers agreed on (or an operator settled). Undecided tasks are not in it."""
    tasks = (
        ReviewTask.objects.filter(round_id=round_id, kind=kind, status=ReviewTask.Status.DONE)
        .exclude(decision="")
        .only("pk", "subject_id", "decision", "edited_text", "note")
    )
    return {task.subject_id: task for task in tasks.iterator(2000)}


def gate_open_count(*, round_id: int, kind: str) -> int:
    """A gate's tasks not done yet (open, claimed, or in conflict between its reviewers)."""
    return ReviewTask.objects.filter(round_id=round_id, kind=kind).exclude(status=ReviewTask.Status.DONE).count()


def effective_task_label(*, experiment_id: int, instruction_id: int) -> TaskLabel | None:
    """The label that counts: a reviewer's, else the LLM classifier's, else the local one's, else imported."""
    labels = {t.source: t for t in TaskLabel.objects.filter(experiment_id=experiment_id, instruction_id=instruction_id)}
    return next((labels[source] for source in TaskLabel.PRIORITY if source in labels), None)


def experiment_progress(*, experiment_id: int) -> dict:
    """Where an experiment is: its status, the current round and stage with done/total/failed/cost."""
    experiment = Experiment.objects.get(pk=experiment_id)
    rounds = list(Round.objects.filter(experiment=experiment).order_by("index"))
    current = next((r for r in rounds if r.status not in ("finished", "failed", "cancelled")), None)
    stage = None
    if current is not None:
        stage = (
            StageRun.objects.filter(round=current)
            .exclude(status__in=[StageRun.Status.DONE])
            .order_by("position")
            .first()
        )
    return {
        "experiment": experiment,
        "rounds": rounds,
        "round": current,
        "stage": stage,
        "stages": list(StageRun.objects.filter(round=current).order_by("position")) if current else [],
    }
