"""Signals from lower apps that change an experiment's state or wake its engine (connected in apps.py)."""

import logging

from django.contrib.contenttypes.models import ContentType

from apps.core.errors import RetortError
from apps.experiments.services import ExperimentTransitionError, experiment_hold
from apps.experiments.wake import wake
from apps.llm.classifier_data import LabelledTask, classifier_examples_record, classifier_retrain_queue
from apps.reviews.kinds import Decision
from apps.reviews.models import ReviewTask
from workers.llm.prompts import task_text

log = logging.getLogger(__name__)


def on_hold_requested(sender, *, experiment_id: int, reason: str, **kwargs) -> None:
    """The LLM gateway stopped sending an experiment's calls: pause the experiment with its reason."""
    try:
        experiment_hold(experiment_id=experiment_id, reason=reason)
    except ExperimentTransitionError as exc:
        # An ended experiment stays ended; the gateway's hold keeps its leftover calls unsent.
        log.info("Hold not applied to experiment %s: %s", experiment_id, exc)


def on_calls_settled(sender, *, experiment_ids, **kwargs) -> None:
    """Calls that experiments asked for have settled: their stages may collect (sent after commit)."""
    for experiment_id in sorted(set(experiment_ids)):
        wake(experiment_id)


def on_job_finished(sender, *, round_id: int, **kwargs) -> None:
    """A training or generation job of a round ended: its train or answer stage moves on."""
    from apps.experiments.models import Round

    experiment_id = Round.objects.filter(pk=round_id).values_list("experiment_id", flat=True).first()
    if experiment_id is not None:
        wake(experiment_id)


def on_review_tasks_done(sender, *, round_ids, **kwargs) -> None:
    """Review tasks of these rounds were decided (sent after commit): their gates may open."""
    from apps.experiments.models import Round

    ids = Round.objects.filter(pk__in=list(round_ids)).values_list("experiment_id", flat=True).distinct()
    for experiment_id in sorted(set(ids)):
        wake(experiment_id)


def on_task_labels_done(sender, *, task_ids, kinds, **kwargs) -> None:
    """Task labels reviewers decided (sent after commit) are the local classifier's training data: record
    them in the gateway's layer and queue a retraining when any label is new or changed."""
    if ReviewTask.Kind.TASK_LABEL not in kinds:
        return
    labels = reviewed_task_labels(task_ids=task_ids)
    try:
        changed = classifier_examples_record(tasks=labels) if labels else 0
    except RetortError as exc:  # the decisions stand; only the classifier misses these examples
        log.error("Task labels of review tasks %s not kept as classifier examples: %s", sorted(task_ids), exc)
        return
    if changed:
        classifier_retrain_queue(reason="review")


def reviewed_task_labels(*, task_ids) -> list[LabelledTask]:
    """Each done task-label review's task text and category (an accept keeps the label, an edit gives the
    new one), in review order. Auto-approve's accepts are left out: nobody looked at those labels."""
    from apps.experiments.models import TaskLabel
    from apps.experiments.stages.review_gate import AUTO_REVIEWER

    tasks = list(
        ReviewTask.objects.filter(
            pk__in=list(task_ids),
            kind=ReviewTask.Kind.TASK_LABEL,
            status=ReviewTask.Status.DONE,
            subject_type=ContentType.objects.get_for_model(TaskLabel),
        )
        .exclude(resolved_by__username=AUTO_REVIEWER)
        .order_by("resolved_at", "pk")
    )
    labels = TaskLabel.objects.select_related("instruction").in_bulk([t.subject_id for t in tasks])
    out = []
    for task in tasks:
        label = labels.get(task.subject_id)
        if label is None:
            continue
        instruction = label.instruction
        category = task.edited_text if task.decision == Decision.EDIT else label.category
        out.append(
            LabelledTask(
                text=task_text(instruction.text, instruction.input),
                content_hash=instruction.content_hash,
                category=category,
                experiment_id=label.experiment_id,
                round_id=task.round_id,
                review_task_id=task.pk,
                reviewer_id=task.resolved_by_id,
            )
        )
    return out
