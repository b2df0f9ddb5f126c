"""Writes for training: queue a round's training job once, queue local generation, queue an adapter's
merge into its base once, cancel, recover.

The gpu tasks' own writes (claim, heartbeat, outcome) are in apps.training.lifecycle.
"""

import logging
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.enqueue import job_resend_unsent, job_resend_waiting, send_job_on_commit
from apps.core.errors import RetortError
from apps.core.roles import Role, require_role
from apps.training import conf
from apps.training.lifecycle import RUN_GENERATION_TASK, RUN_MERGE_TASK, RUN_TRAINING_TASK, send_finished_on_commit
from apps.training.models import ACTIVE, Artifact, GenerationItem, GenerationJob, JobStatus, MergeJob, TrainingJob
from apps.training.selectors import artifact_merge_refusal

logger = logging.getLogger(__name__)

# Fields the training app fills in itself; a caller's spec may not set them.
_OWNED_SPEC_FIELDS = ("job_id", "output_dir")
# workers.training.generate's options (its GenerateSpec, less the paths this app writes).
GENERATION_PARAMS = ("max_new_tokens", "temperature", "top_p", "batch_size", "seed", "engine", "architecture")


def _invalid(exc: ValidationError) -> RetortError:
    return RetortError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()))


def _user(by):
    return by if getattr(by, "is_authenticated", False) else None


def _lock_round(round_id: int):
    # The round model is reached through the foreign key: this app sits below apps.experiments and may not
    # import it. Locking the round serialises every enqueue for it, so the checks below see each other.
    round_model = TrainingJob._meta.get_field("round").related_model
    found = round_model.objects.select_for_update().filter(pk=round_id).first()
    if found is None:
        raise RetortError(f"There is no round #{round_id}.")
    return found


def training_job_enqueue(*, round_id: int, snapshot_id: int, spec: dict, by=None) -> TrainingJob:
    """Queue the training of a round on its frozen snapshot, once. Called again (a second press, a retried
    request, another web server) it returns the round's queued, running or succeeded job and sends nothing.

    `spec` holds the trainer's fields (workers.training.spec.TrainSpec) except job_id and output_dir, which
    this app fills in; it must name `base_model` and `data_path` (a JSONL file the gpu workers can read).
    """
    if not isinstance(spec, dict):
        raise RetortError("The training spec must be an object of trainer fields.")
    owned = [key for key in _OWNED_SPEC_FIELDS if key in spec]
    if owned:
        raise RetortError(f"The training app sets {', '.join(owned)} itself; leave them out of the spec.")
    for key in ("base_model", "data_path"):
        if not isinstance(spec.get(key), str) or not spec[key].strip():
            raise RetortError(f"The training spec needs {key} (a non-empty string).")
    with transaction.atomic():
        _lock_round(round_id)
        existing = (
            TrainingJob.objects.filter(round_id=round_id, status__in=[*ACTIVE, JobStatus.SUCCEEDED])
            .order_by("-id")
            .first()
        )
        if existing is not None:
            if existing.snapshot_id != snapshot_id:
                raise RetortError(
                    f"Round #{round_id} already has training job #{existing.pk} ({existing.status}) on "
                    f"snapshot #{existing.snapshot_id}, not #{snapshot_id}."
                )
            return existing
        job = TrainingJob(
            round_id=round_id,
            snapshot_id=snapshot_id,
            spec=spec,
            base_model=spec["base_model"].strip(),
            requested_by=_user(by),
        )
        try:
            job.full_clean()
        except ValidationError as exc:
            raise _invalid(exc) from None
        try:
            with transaction.atomic():
                job.save()
        except IntegrityError:
            # The partial unique index is the last word where the row lock is not taken (it always is here).
            return TrainingJob.objects.get(round_id=round_id, status__in=ACTIVE)
        folder = _job_folder("job", job.pk)
        job.output_dir, job.log_path = str(folder), str(folder / "train.log")
        job.save(update_fields=["output_dir", "log_path", "updated_at"])
        send_job_on_commit(RUN_TRAINING_TASK, TrainingJob, job.pk)
    return job


def _job_folder(kind: str, pk: int):
    """A job's own folder. The random part keeps a job from resuming the checkpoint of an older job that had
    the same id in another database (a rebuilt database over the same media folder, a test run)."""
    return conf.training_root() / f"{kind}-{pk}-{secrets.token_hex(4)}"


def _cancel(model, *, job_id: int, by=None):
    if by is not None:
        require_role(by, Role.OPERATOR)
    cutoff = timezone.now() - timedelta(seconds=conf.stale_after_s())
    with transaction.atomic():
        job = model.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            raise RetortError(f"There is no {model._meta.verbose_name} #{job_id}.")
        if job.is_finished:
            return job
        job.cancel_requested = True
        fields = ["cancel_requested", "updated_at"]
        # A live worker stops its subprocess and records the end itself; a queued job, or one whose worker
        # is gone, ends here (a late worker finds the job no longer running as its own and stops).
        if job.status == JobStatus.QUEUED or job.heartbeat_at is None or job.heartbeat_at < cutoff:
            job.error = (
                "cancelled before it ran" if job.status == JobStatus.QUEUED else "cancelled; its worker had gone"
            )
            job.status, job.finished_at = JobStatus.CANCELLED, timezone.now()
            fields += ["status", "finished_at", "error"]
            send_finished_on_commit(job)
        job.save(update_fields=fields)
    return job


def training_job_cancel(*, job_id: int, by=None) -> TrainingJob:
    """Stop a training job: a queued one at once; a running one through its worker (SIGTERM to the
    trainer, which saves a checkpoint and exits), which then frees itself for the next job."""
    return _cancel(TrainingJob, job_id=job_id, by=by)


def generation_job_cancel(*, job_id: int, by=None) -> GenerationJob:
    return _cancel(GenerationJob, job_id=job_id, by=by)


def training_generation_enqueue(
    *, round_id: int, artifact_id: int | None, base_model: str, prompts, params: dict | None = None, by=None
) -> GenerationJob:
    """Queue batched generation by a round's checkpoint (`artifact_id`; None: the base model alone) for
    `prompts`, a list of (key, prompt) pairs with unique keys. Results: apps.training.selectors."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(GENERATION_PARAMS))
    if unknown:
        raise RetortError(f"Unknown generation parameters {', '.join(unknown)}; known: {', '.join(GENERATION_PARAMS)}.")
    pairs = [tuple(pair) for pair in prompts]
    if not pairs:
        raise RetortError("Nothing to generate: the prompt list is empty.")
    keys = set()
    for pair in pairs:
        if len(pair) != 2 or not isinstance(pair[0], str) or not isinstance(pair[1], str) or not pair[0]:
            raise RetortError(f"Each prompt must be a (key, prompt) pair of strings; got {pair!r:.200}.")
        if pair[0] in keys:
            raise RetortError(f"The prompt key {pair[0]!r} appears twice.")
        keys.add(pair[0])
    with transaction.atomic():
        job = GenerationJob(
            round_id=round_id,
            artifact_id=artifact_id,
            base_model=(base_model or "").strip(),
            params=params,
            prompts_count=len(pairs),
            requested_by=_user(by),
        )
        try:
            job.full_clean()
        except ValidationError as exc:
            raise _invalid(exc) from None
        if job.artifact is not None and job.artifact.base_model and job.artifact.base_model != job.base_model:
            raise RetortError(
                f"Artifact #{artifact_id} was trained from {job.artifact.base_model}, not {job.base_model}."
            )
        job.save()
        folder = _job_folder("generation", job.pk)
        job.output_dir, job.log_path = str(folder), str(folder / "generate.log")
        job.input_path, job.output_path = str(folder / "prompts.jsonl"), str(folder / "outputs.jsonl")
        job.save(update_fields=["output_dir", "log_path", "input_path", "output_path", "updated_at"])
        GenerationItem.objects.bulk_create(
            [GenerationItem(job=job, key=key, prompt=prompt) for key, prompt in pairs], batch_size=1000
        )
        send_job_on_commit(RUN_GENERATION_TASK, GenerationJob, job.pk)
    return job


def artifact_merge(*, artifact_id: int, by) -> MergeJob:
    """Queue the merge of a LoRA adapter into its base model (operators only). Pressed again — a second
    click, another operator, a retried request — it returns the adapter's queued, running or succeeded merge
    and sends nothing; after a failed one it queues a new try. On success the gpu worker registers the
    merged weights as an Artifact of kind merged whose `source` is the adapter."""
    require_role(by, Role.OPERATOR)
    live = [*ACTIVE, JobStatus.SUCCEEDED]
    with transaction.atomic():
        # The adapter's row lock serialises presses; the partial unique index backs it where it is not taken.
        artifact = Artifact.objects.select_for_update().filter(pk=artifact_id).first()
        if artifact is None:
            raise RetortError(f"There is no artifact #{artifact_id}.")
        refusal = artifact_merge_refusal(artifact)
        if refusal:
            raise RetortError(f"Artifact #{artifact_id} cannot be merged: {refusal}.")
        existing = MergeJob.objects.filter(adapter=artifact, status__in=live).order_by("-id").first()
        if existing is not None:
            return existing
        job = MergeJob(adapter=artifact, base_model=artifact.base_model, requested_by=_user(by))
        try:
            job.full_clean()
        except ValidationError as exc:
            raise _invalid(exc) from None
        try:
            with transaction.atomic():
                job.save()
        except IntegrityError:
            return MergeJob.objects.get(adapter=artifact, status__in=live)
        folder = _job_folder("merge", job.pk)
        job.output_dir, job.log_path = str(folder), str(folder / "merge.log")
        job.save(update_fields=["output_dir", "log_path", "updated_at"])
        send_job_on_commit(RUN_MERGE_TASK, MergeJob, job.pk)
    return job


def _recover(model, task_name: str, *, stale_after_s: float) -> list[int]:
    now = timezone.now()
    dead = now - timedelta(seconds=stale_after_s)
    # A queued job normally has its message in the broker; one is re-sent only after a long wait, in case
    # the message was lost (a broker restarted without persistence, a worker gone between receiving and
    # claiming). One the broker refused outright is marked so, and re-sent at once (job_resend_unsent).
    forgotten = now - timedelta(seconds=10 * stale_after_s)
    requeued = []
    stale = model.objects.filter(status=JobStatus.RUNNING).filter(Q(heartbeat_at__lt=dead) | Q(heartbeat_at=None))
    for job_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            moved = (
                model.objects.filter(pk=job_id, status=JobStatus.RUNNING)
                .filter(Q(heartbeat_at__lt=dead) | Q(heartbeat_at=None))
                .update(status=JobStatus.QUEUED, updated_at=now)
            )
            if moved:
                send_job_on_commit(task_name, model, job_id)
                requeued.append(job_id)
    # Those the broker refused (down when they were queued): sent as soon as it is back.
    resent = job_resend_unsent(task_name, model)
    return requeued + resent + job_resend_waiting(task_name, model, queued_before=forgotten, skip=resent)


def training_job_recover_stale(*, stale_after_s: float) -> list[int]:
    """Queue again the training jobs whose worker stopped beating (the trainer resumes from its last
    checkpoint in the same folder), and re-send long-queued ones whose message may be lost."""
    return _recover(TrainingJob, RUN_TRAINING_TASK, stale_after_s=max(stale_after_s, conf.stale_after_s()))


def generation_job_recover_stale(*, stale_after_s: float) -> list[int]:
    return _recover(GenerationJob, RUN_GENERATION_TASK, stale_after_s=max(stale_after_s, conf.stale_after_s()))


def merge_job_recover_stale(*, stale_after_s: float) -> list[int]:
    """Queue again the merges whose worker stopped beating (a merge starts over: it writes beside and renames)."""
    return _recover(MergeJob, RUN_MERGE_TASK, stale_after_s=max(stale_after_s, conf.stale_after_s()))
