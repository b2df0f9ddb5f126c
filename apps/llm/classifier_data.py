"""Writes for the local task classifier's own data: reviewers' task labels as its training examples, and
its retrainings (queued at most one at a time, claimed by one worker, finished with their figures or
their error).

The experiments app hands over the labels when task-label reviews are done (apps.experiments.receivers);
the retraining runs on an llm worker (apps.llm.classifier_training, which embeds text with MiniLM), so
nothing here loads a model. Reads: apps.llm.selectors.classifier_versions.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.enqueue import send_on_commit_if_reachable
from apps.core.errors import RetortError
from apps.core.heartbeat import worker_identity
from apps.core.roles import Role, require_role
from apps.llm.models import ClassifierExample, ClassifierVersion
from workers.algorithms.task_vocabulary import UnknownTaskLabel, to_task_category

RETRAIN_TASK = "apps.llm.tasks.retrain_task_classifier"
# A queued retraining whose task message has waited this long is sent again when another is asked for,
# so a message lost with a killed worker cannot block every later retraining (one delivery claims it).
RESEND_AFTER_S = 600
# A retraining still running after this long died with its worker (past the task's hard time limit).
RUN_LIMIT_S = 2000
FIGURES = (
    "examples",
    "review_examples",
    "categories",
    "heldout_size",
    "accuracy",
    "review_heldout_size",
    "review_accuracy",
    "cv_accuracy",
)
V = ClassifierVersion.Status


@dataclass(frozen=True)
class LabelledTask:
    """A reviewer's decided task label, as the experiments app hands it over."""

    text: str
    content_hash: str
    category: str
    experiment_id: int | None = None
    round_id: int | None = None
    review_task_id: int | None = None
    reviewer_id: int | None = None


def _checked(task: LabelledTask) -> LabelledTask:
    where = f"review task #{task.review_task_id}" if task.review_task_id else f"task {task.content_hash[:12]}"
    if not task.text.strip() or len(task.content_hash) != 64:
        raise RetortError(f"A classifier example from {where} needs its task text and 64-character content hash.")
    try:
        category = to_task_category(task.category)
    except UnknownTaskLabel:
        raise RetortError(f"The label {task.category[:80]!r} of {where} is not a task category.") from None
    return replace(task, category=category)


@transaction.atomic
def classifier_examples_record(*, tasks: Sequence[LabelledTask]) -> int:
    """Store reviewers' labels as the classifier's examples (source review), one per content hash: a later
    decision (later in `tasks`, or in a later call) replaces an earlier one. Returns how many examples
    are new or changed their category, i.e. whether a retraining would learn anything."""
    latest = {task.content_hash: task for task in map(_checked, tasks)}
    if not latest:
        return 0
    review = ClassifierExample.Source.REVIEW
    before = dict(
        ClassifierExample.objects.filter(source=review, content_hash__in=list(latest)).values_list(
            "content_hash", "category"
        )
    )
    rows = [
        ClassifierExample(
            text=task.text,
            content_hash=task.content_hash,
            category=task.category,
            source=review,
            experiment_id=task.experiment_id,
            round_id=task.round_id,
            review_task_id=task.review_task_id,
            reviewer_id=task.reviewer_id,
        )
        for task in latest.values()
    ]
    # One statement that inserts or updates, so two workers recording the same text never collide.
    ClassifierExample.objects.bulk_create(
        rows,
        batch_size=500,
        update_conflicts=True,
        unique_fields=["content_hash", "source"],
        update_fields=["text", "category", "experiment_id", "round_id", "review_task_id", "reviewer", "updated_at"],
    )
    return sum(before.get(h) != task.category for h, task in latest.items())


def _fail_abandoned(now) -> None:
    """Retrainings still running past the task's hard limit died with their worker."""
    ClassifierVersion.objects.filter(status=V.RUNNING, started_at__lt=now - timedelta(seconds=RUN_LIMIT_S)).update(
        status=V.FAILED, error="Its worker stopped before the retraining finished.", finished_at=now, updated_at=now
    )


def classifier_retrain_queue(*, reason: str, by=None) -> tuple[ClassifierVersion | None, bool]:
    """Queue a retraining unless one is queued already (debounced: a burst of decided reviews queues one,
    which learns from all of them). Returns (the queued version, whether this call queued it)."""
    with transaction.atomic():
        _fail_abandoned(timezone.now())
        waiting = ClassifierVersion.objects.select_for_update().filter(status=V.QUEUED).first()
        if waiting is not None:
            if waiting.updated_at < timezone.now() - timedelta(seconds=RESEND_AFTER_S):
                waiting.save(update_fields=["updated_at"])
                send_on_commit_if_reachable(RETRAIN_TASK, waiting.pk)
            return waiting, False
        try:
            with transaction.atomic():
                version = ClassifierVersion.objects.create(reason=reason, requested_by=by)
        except IntegrityError:  # another process queued one between our read and our insert
            return ClassifierVersion.objects.filter(status=V.QUEUED).first(), False
        send_on_commit_if_reachable(RETRAIN_TASK, version.pk)  # a lost message is resent by the next ask
        return version, True


def classifier_retrain(*, by) -> tuple[ClassifierVersion | None, bool]:
    """An operator asks for a retraining now (the endpoint page's button)."""
    require_role(by, Role.OPERATOR)
    return classifier_retrain_queue(reason="operator", by=by)


def classifier_version_claim(*, version_id: int) -> ClassifierVersion | None:
    """Move a queued retraining to running under its row lock; None when it is not queued (a second
    delivery of its task, or already done). Retrainings left running by a dead worker are marked failed."""
    now = timezone.now()
    with transaction.atomic():
        version = ClassifierVersion.objects.select_for_update().filter(pk=version_id).first()
        if version is None or version.status != V.QUEUED:
            return None
        _fail_abandoned(now)
        version.status, version.started_at, version.worker = V.RUNNING, now, worker_identity()
        version.save(update_fields=["status", "started_at", "worker", "updated_at"])
    return version


@transaction.atomic
def classifier_version_finish(
    *, version_id: int, path: str, sha256: str, embedder: str, **figures
) -> ClassifierVersion:
    """Record a finished retraining: its saved head (path relative to MEDIA_ROOT, sha256) and its figures."""
    unknown = set(figures) - set(FIGURES)
    if unknown:
        raise RetortError(f"Unknown classifier version figures: {', '.join(sorted(unknown))}.")
    version = ClassifierVersion.objects.select_for_update().get(pk=version_id)
    if version.status != V.RUNNING:
        raise RetortError(f"Classifier version {version_id} is {version.status}, not running: its result is not kept.")
    for name, value in figures.items():
        setattr(version, name, value)
    version.status, version.path, version.sha256, version.embedder = V.READY, path, sha256, embedder
    version.finished_at = timezone.now()
    version.full_clean()
    version.save()
    return version


@transaction.atomic
def classifier_version_fail(*, version_id: int, error: str) -> None:
    ClassifierVersion.objects.filter(pk=version_id, status=V.RUNNING).update(
        status=V.FAILED, error=error[:4000], finished_at=timezone.now(), updated_at=timezone.now()
    )
