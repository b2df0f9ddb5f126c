"""The gpu tasks' writes: claim a job, beat while it runs, store its metrics and outputs, record its end.

Ownership of a running job is (status running, attempts = the attempt the worker claimed). Every write a
worker makes is conditional on it, so a worker that lost the job (its heartbeat went stale and another
delivery claimed it, or it was cancelled as dead) finds zero rows updated and stops instead of writing.
"""

import enum
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from apps.core.enqueue import send_job_on_commit
from apps.core.heartbeat import worker_identity
from apps.training.models import (
    Artifact,
    GenerationItem,
    GenerationJob,
    JobStatus,
    MergeJob,
    TrainingJob,
    TrainingMetric,
)
from apps.training.signals import generation_job_finished, training_job_finished

logger = logging.getLogger(__name__)

# Tasks are sent by name: the tasks module imports this one.
RUN_TRAINING_TASK = "apps.training.tasks.run_training_job"
RUN_GENERATION_TASK = "apps.training.tasks.run_generation_job"
RUN_MERGE_TASK = "apps.training.tasks.run_merge_job"


class Beat(enum.Enum):
    OK = "ok"
    CANCEL = "cancel"  # an operator asked to stop
    LOST = "lost"  # the job is no longer this worker's


def send_finished_on_commit(job) -> None:
    """Tell the apps above that a job ended, once its end has committed. A receiver's error is logged, not
    raised: the job's state is already stored and the worker must go on to its next job."""
    signal = training_job_finished if isinstance(job, TrainingJob) else generation_job_finished
    kwargs = {"job_id": job.pk, "round_id": job.round_id, "status": job.status}

    def deliver():
        for receiver, result in signal.send_robust(sender=type(job), **kwargs):
            if isinstance(result, Exception):
                logger.error("%s receiver %r failed for %s", signal, receiver, kwargs, exc_info=result)

    transaction.on_commit(deliver)


def job_claim(model, *, job_id: int, stale_after_s: float):
    """Take a job for this worker with one conditional UPDATE: a queued job, or a running one whose worker
    stopped beating. Returns the job (attempts counts this start) or None when it is not ours to run:
    finished, or running with a live heartbeat (a redelivered message, a second worker)."""
    now = timezone.now()
    claimable = Q(status=JobStatus.QUEUED) | Q(
        status=JobStatus.RUNNING, heartbeat_at__lt=now - timedelta(seconds=stale_after_s)
    )
    with transaction.atomic():
        taken = (
            model.objects.filter(pk=job_id)
            .filter(claimable)
            .update(
                status=JobStatus.RUNNING,
                attempts=F("attempts") + 1,
                heartbeat_at=now,
                worker=worker_identity(),
                started_at=Coalesce("started_at", now),
                queue_unreachable_at=None,
                updated_at=now,
            )
        )
    return model.objects.get(pk=job_id) if taken else None


def _owned(model, job_id: int, attempt: int):
    return model.objects.filter(pk=job_id, status=JobStatus.RUNNING, attempts=attempt)


def training_job_beat(*, job_id: int, attempt: int, rows: list[tuple[int, str, float]], offset: int) -> Beat:
    """Store a batch of metric rows and the metrics file offset after them, and beat, in one transaction."""
    now = timezone.now()
    changes = {"heartbeat_at": now, "metrics_offset": offset, "updated_at": now}
    if rows:
        changes["steps"] = Greatest(F("steps"), max(step for step, _, _ in rows))
    with transaction.atomic():
        if not _owned(TrainingJob, job_id, attempt).update(**changes):
            return Beat.LOST
        if rows:
            # A resumed trainer reports again the steps after its last checkpoint: the newer value wins.
            TrainingMetric.objects.bulk_create(
                [TrainingMetric(job_id=job_id, step=s, name=n, value=v) for s, n, v in rows],
                update_conflicts=True,
                unique_fields=["job", "step", "name"],
                update_fields=["value"],
                batch_size=500,
            )
        cancel = TrainingJob.objects.filter(pk=job_id).values_list("cancel_requested", flat=True).get()
    return Beat.CANCEL if cancel else Beat.OK


def _beat(model, job_id: int, attempt: int) -> Beat:
    now = timezone.now()
    with transaction.atomic():
        if not _owned(model, job_id, attempt).update(heartbeat_at=now, updated_at=now):
            return Beat.LOST
        cancel = model.objects.filter(pk=job_id).values_list("cancel_requested", flat=True).get()
    return Beat.CANCEL if cancel else Beat.OK


def generation_job_beat(*, job_id: int, attempt: int) -> Beat:
    return _beat(GenerationJob, job_id, attempt)


def merge_job_beat(*, job_id: int, attempt: int) -> Beat:
    return _beat(MergeJob, job_id, attempt)


@dataclass
class ArtifactFiles:
    kind: str
    path: str
    sha256: str
    size_bytes: int
    metadata: dict = field(default_factory=dict)


@dataclass
class Outcome:
    status: str  # a JobStatus, or QUEUED to run the job again
    exit_code: int | None
    error: str = ""
    artifact: ArtifactFiles | None = None


def training_job_finish(*, job_id: int, attempt: int, outcome: Outcome) -> TrainingJob | None:
    """Record how an attempt ended; register its artifact; queue it again or tell the engine it ended.
    None when the job was no longer this worker's."""
    with transaction.atomic():
        job = _owned(TrainingJob, job_id, attempt).select_for_update().first()
        if job is None:
            return None
        job.status, job.exit_code, job.error = outcome.status, outcome.exit_code, outcome.error
        if outcome.status == JobStatus.QUEUED:
            send_job_on_commit(RUN_TRAINING_TASK, TrainingJob, job.pk)
        else:
            job.finished_at = timezone.now()
        job.save(update_fields=["status", "exit_code", "error", "finished_at", "updated_at"])
        if outcome.artifact is not None:
            found = outcome.artifact
            Artifact.objects.get_or_create(
                training_job=job,
                path=found.path,
                defaults={
                    "kind": found.kind,
                    "round_id": job.round_id,
                    "sha256": found.sha256,
                    "size_bytes": found.size_bytes,
                    "base_model": job.base_model,
                    "snapshot_hash": job.snapshot.hash if job.snapshot_id else "",
                    "spec": job.spec,
                    "metadata": found.metadata,
                },
            )
        if job.is_finished:
            send_finished_on_commit(job)
    return job


def generation_outputs_store(*, job_id: int, attempt: int, outputs: list[dict]) -> bool:
    """Store generated texts ({id, text, tokens}) on their items; False when the job is no longer ours."""
    by_key = {str(row["id"]): row for row in outputs}
    with transaction.atomic():
        if not _owned(GenerationJob, job_id, attempt).exists():
            return False
        items = list(GenerationItem.objects.filter(job_id=job_id, key__in=list(by_key)))
        for item in items:
            row = by_key[item.key]
            item.text, item.tokens = str(row.get("text", "")), row.get("tokens")
        GenerationItem.objects.bulk_update(items, ["text", "tokens"], batch_size=500)
    return True


def generation_job_finish(*, job_id: int, attempt: int, outcome: Outcome) -> GenerationJob | None:
    with transaction.atomic():
        job = _owned(GenerationJob, job_id, attempt).select_for_update().first()
        if job is None:
            return None
        job.status, job.exit_code, job.error = outcome.status, outcome.exit_code, outcome.error
        job.done_count = GenerationItem.objects.filter(job_id=job_id, text__isnull=False).count()
        if outcome.status == JobStatus.QUEUED:
            send_job_on_commit(RUN_GENERATION_TASK, GenerationJob, job.pk)
        else:
            job.finished_at = timezone.now()
        job.save(update_fields=["status", "exit_code", "error", "finished_at", "done_count", "updated_at"])
        if job.is_finished:
            send_finished_on_commit(job)
    return job


def merge_job_finish(*, job_id: int, attempt: int, outcome: Outcome) -> MergeJob | None:
    """Record how a merge attempt ended and, on success, register the merged model as an artifact linked
    to its adapter (once: a retried finish finds it). None when the job was no longer this worker's."""
    with transaction.atomic():
        job = _owned(MergeJob, job_id, attempt).select_for_update().first()
        if job is None:
            return None
        job.status, job.exit_code, job.error = outcome.status, outcome.exit_code, outcome.error
        if outcome.status == JobStatus.QUEUED:
            send_job_on_commit(RUN_MERGE_TASK, MergeJob, job.pk)
        else:
            job.finished_at = timezone.now()
        if outcome.artifact is not None:
            adapter, found = job.adapter, outcome.artifact
            job.merged, _ = Artifact.objects.get_or_create(
                source=adapter,
                kind=Artifact.Kind.MERGED,
                defaults={
                    "training_job_id": adapter.training_job_id,
                    "round_id": adapter.round_id,
                    "path": found.path,
                    "sha256": found.sha256,
                    "size_bytes": found.size_bytes,
                    "base_model": adapter.base_model,
                    "snapshot_hash": adapter.snapshot_hash,
                    "spec": adapter.spec,
                    "metadata": found.metadata,
                },
            )
        job.save(update_fields=["status", "exit_code", "error", "finished_at", "merged", "updated_at"])
    return job
