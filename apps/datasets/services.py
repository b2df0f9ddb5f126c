"""Writes for datasets: import jobs (uploads run on a worker) built on `dataset_import_file`."""

import logging
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import OperationalError, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from apps.core.enqueue import job_resend_unsent, job_resend_waiting, send_job_on_commit
from apps.core.errors import RetortError
from apps.core.heartbeat import heartbeat_age_s, heartbeat_clear, heartbeat_touch, worker_identity
from apps.core.roles import Role, require_role
from apps.datasets.formats import FORMATS
from apps.datasets.importing import ImportFailed, dataset_import_file
from apps.datasets.models import ImportJob

HEARTBEAT_KIND = "import"
logger = logging.getLogger(__name__)
RUN_IMPORT_TASK = "apps.datasets.tasks.run_import_job"  # sent by name: the tasks module imports this one


def _upload_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "imports" / uuid.uuid4().hex
    path.mkdir(parents=True, exist_ok=True)
    return path


def import_job_create(
    *, uploaded_file, dataset_name: str, fmt: str = "auto", skip_invalid: bool = False, license: str = "", user=None
) -> ImportJob:
    """Store the upload and queue its import on a worker, for a user holding the operator role."""
    require_role(user, Role.OPERATOR)
    if fmt != "auto" and fmt not in FORMATS:
        raise RetortError(f"Unknown format {fmt!r}; choose auto or one of {', '.join(FORMATS)}.")
    if uploaded_file.size > settings.RETORT_MAX_UPLOAD_BYTES:
        raise RetortError(
            f"The file is {uploaded_file.size:,} bytes, "
            f"over the {settings.RETORT_MAX_UPLOAD_BYTES:,}-byte upload limit."
        )
    name = get_valid_filename(Path(uploaded_file.name).name) or "upload"
    target = _upload_dir() / name
    with open(target, "wb") as out:
        for chunk in uploaded_file.chunks():
            out.write(chunk)
    job = ImportJob(
        dataset_name=dataset_name.strip(),
        source_path=str(target),
        original_filename=uploaded_file.name[:500],
        format=fmt,
        skip_invalid=skip_invalid,
        license=(license or "").strip(),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    try:
        job.full_clean()
    except ValidationError as exc:
        shutil.rmtree(target.parent, ignore_errors=True)
        raise RetortError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
    with transaction.atomic():
        job.save()
        send_job_on_commit(RUN_IMPORT_TASK, ImportJob, job.pk)
    return job


def _claim(job_id: int) -> ImportJob | None:
    """Move a queued job to running under a row lock. Any other state means someone else has it (or it
    is done): duplicate deliveries of the same task then do nothing."""
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != ImportJob.Status.QUEUED:
            return None
        job.status = ImportJob.Status.RUNNING
        job.started_at = timezone.now()
        job.worker = worker_identity()
        job.attempts += 1
        job.queue_unreachable_at = None
        job.save(update_fields=["status", "started_at", "worker", "attempts", "queue_unreachable_at", "updated_at"])
    heartbeat_touch(HEARTBEAT_KIND, job_id, records=0, bytes=0, total=0)
    return job


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Run one queued import job. Returns None when the job was not ours to run."""
    job = _claim(job_id)
    if job is None:
        return None

    def on_progress(records: int, done: int, total: int) -> None:
        heartbeat_touch(HEARTBEAT_KIND, job_id, records=records, bytes=done, total=total)

    blocked_by_invalid = False
    # One transaction from here to the final counts, holding the job's row lock (on SQLite, the database's
    # write lock) all along: that lock is how recovery tells a live import from a dead worker's, whatever
    # the cache says. The import's own transaction nests inside as a savepoint, so the rows and the job's
    # result commit together.
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        if job.status != ImportJob.Status.RUNNING:
            return job
        try:
            report = dataset_import_file(
                path=job.source_path,
                dataset_name=job.dataset_name,
                fmt=job.format,
                skip_invalid=job.skip_invalid,
                user=job.created_by,
                on_progress=on_progress,
                license=job.license,
            )
            status, message = ImportJob.Status.SUCCEEDED, report.summary()
        except ImportFailed as exc:
            report = exc.report
            status, message = ImportJob.Status.FAILED, str(exc)
            blocked_by_invalid = exc.skippable
        _record_outcome(job, report, status, message, blocked_by_invalid)
        job.save()
    shutil.rmtree(Path(job.source_path).parent, ignore_errors=True)
    heartbeat_clear(HEARTBEAT_KIND, job_id)
    return job


def _record_outcome(job: ImportJob, report, status: str, message: str, blocked_by_invalid: bool) -> None:
    job.status, job.message, job.blocked_by_invalid = status, message, blocked_by_invalid
    job.detected_format = report.format
    job.dataset_id = report.dataset_id if status == ImportJob.Status.SUCCEEDED else None
    job.records_read, job.imported, job.duplicates = report.records_read, report.imported, report.duplicates
    job.skipped_invalid = report.skipped_invalid
    job.errors = [{"location": p.location, "reason": p.reason} for p in report.problems]
    job.error_count = report.problem_count
    job.finished_at = timezone.now()


def import_job_record(
    *, path, dataset_name: str, fmt: str, skip_invalid: bool, license: str, started_at, report, failure=None
) -> ImportJob:
    """Record an import that ran outside a worker (the import_dataset command) as a finished job, so the
    pages list it like an upload. `failure` is the ImportFailed it raised, if it did."""
    job = ImportJob(
        dataset_name=dataset_name.strip()[:200],
        source_path=str(path)[:1000],
        original_filename=Path(path).name[:500],
        format=fmt,
        skip_invalid=skip_invalid,
        license=(license or "").strip()[:200],
        worker=worker_identity(),
        attempts=1,
        started_at=started_at,
    )
    if failure is None:
        _record_outcome(job, report, ImportJob.Status.SUCCEEDED, report.summary(), False)
    else:
        _record_outcome(job, report, ImportJob.Status.FAILED, str(failure), failure.skippable)
    job.save()
    return job


def _requeue_if_abandoned(job_id: int, cutoff) -> bool:
    """Re-queue a running job whose worker is gone. A live worker holds the job's row lock until its
    import commits (see import_job_run), so a row we can lock is one nobody is working on; one we cannot
    is alive, even when its heartbeat has vanished from the cache (a restart, an eviction)."""
    with transaction.atomic():
        job = (
            ImportJob.objects.select_for_update(skip_locked=True)
            .filter(pk=job_id, status=ImportJob.Status.RUNNING, started_at__lt=cutoff)
            .first()
        )
        if job is None:
            return False
        job.status = ImportJob.Status.QUEUED
        job.save(update_fields=["status", "updated_at"])
        send_job_on_commit(RUN_IMPORT_TASK, ImportJob, job_id)
    return True


def import_job_recover_stale(*, stale_after_s: float) -> list[int]:
    """Queue again the jobs a dead worker left: running ones whose lock is free (their worker is gone),
    and queued ones whose task message was lost (re-sending is harmless: only one delivery can claim the
    job). A fresh heartbeat in the cache spares the lock test; a missing one proves nothing."""
    cutoff = timezone.now() - timedelta(seconds=stale_after_s)
    requeued = []
    for job_id in ImportJob.objects.filter(status=ImportJob.Status.RUNNING).values_list("pk", flat=True):
        age = heartbeat_age_s(HEARTBEAT_KIND, job_id)
        if age is not None and age < stale_after_s:
            continue
        try:
            if _requeue_if_abandoned(job_id, cutoff):
                requeued.append(job_id)
        except OperationalError as exc:
            # SQLite has one write lock for the whole file: a live import holds it until it commits, and
            # waiting for it timed out. The job is alive; the next sweep looks again.
            logger.info("Import job %s looks alive (the database is busy: %s); checking again later", job_id, exc)
            break
    # Those the broker refused (down when they were queued): sent as soon as it is back.
    resent = job_resend_unsent(RUN_IMPORT_TASK, ImportJob)
    return requeued + resent + job_resend_waiting(RUN_IMPORT_TASK, ImportJob, queued_before=cutoff, skip=resent)
