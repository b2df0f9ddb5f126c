"""What a gpu task does: claim the job, run the trainer (or the generator) as a subprocess, watch it, record.

The subprocess holds the model and CUDA; the worker holds only the bookkeeping, so GPU memory is freed when
the job ends and nothing of torch ever loads into a forked worker.
"""

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, close_old_connections

from apps.training import conf
from apps.training.lifecycle import (
    ArtifactFiles,
    Beat,
    Outcome,
    generation_job_beat,
    generation_job_finish,
    generation_outputs_store,
    job_claim,
    merge_job_beat,
    merge_job_finish,
    training_job_beat,
    training_job_finish,
)
from apps.training.models import Artifact, GenerationItem, GenerationJob, JobStatus, MergeJob, TrainingJob
from apps.training.supervisor import Child, MetricsTail, log_tail, output_lock

logger = logging.getLogger(__name__)

EXIT_BAD_SPEC, EXIT_CANCELLED = 2, 3


def _safe_beat(beat: Callable[[], Beat], what: str) -> Beat:
    """A beat the database could not take (SQLite busy with an import, PostgreSQL restarting) is skipped,
    not fatal: the run goes on and the next beat stores what this one could not."""
    try:
        return beat()
    except DatabaseError as exc:
        logger.warning("%s: heartbeat not stored (%s); trying again", what, exc)
        close_old_connections()
        return Beat.OK


def _stored(store: Callable, what: str, *, patience_s: float = 120.0):
    """Run a write a job's end needs (the last metrics or answers, the outcome) until the database takes
    it: a connection dropped mid-write rolled its transaction back, so trying again is safe. Past `patience_s`
    the error is raised, the task fails, and the sweep re-queues the job, whose next attempt finds the
    trainer's result and metrics on disk."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return store()
        except DatabaseError as exc:
            if time.monotonic() > deadline:
                raise
            logger.warning("%s: the database refused a write (%s); trying again", what, exc)
            close_old_connections()
            time.sleep(1.0)


def _supervise(child: Child, beat: Callable[[], Beat], what: str) -> tuple[Beat, bool]:
    """Poll the child until it exits, beating every heartbeat period. Returns (LOST or OK, cancelled)."""
    heartbeat_s, grace_s = conf.heartbeat_s(), conf.cancel_grace_s()
    next_beat, cancelled = 0.0, False
    try:
        while child.poll() is None:
            if time.monotonic() >= next_beat:
                state = _safe_beat(beat, what)
                next_beat = time.monotonic() + heartbeat_s
                if state is Beat.LOST:
                    logger.warning("%s is no longer this worker's; stopping pid %s", what, child.pid)
                    child.stop(grace_s)
                    return Beat.LOST, cancelled
                if state is Beat.CANCEL and not cancelled:
                    logger.info("%s: cancel requested; SIGTERM to pid %s", what, child.pid)
                    cancelled = True
                    child.request_stop()
            child.enforce_grace(grace_s)
            time.sleep(min(0.2, heartbeat_s))
    except BaseException:
        # A time limit or a shutdown interrupting the watch stops the child too: none runs unwatched.
        child.stop(grace_s)
        raise
    return Beat.OK, cancelled


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict) -> None:
    work = path.with_name(path.name + ".tmp")
    work.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(work, path)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactError(Exception):
    pass


def artifact_files(result: dict, *, output_dir: Path, finetune: str, kind: str | None = None) -> ArtifactFiles:
    """Hash the final folder ourselves (a trainer's own list is checked against it, never trusted) and name
    the folder by the sha256 of its manifest: one "sha256  relative/path" line a file, sorted by path.
    The kind follows the fine-tuning (adapter for LoRA, else weights) unless `kind` says otherwise."""
    final = Path(result.get("final_dir") or output_dir / "final")
    if not final.is_dir():
        raise ArtifactError(f"the trainer reported success but left no final folder at {final}")
    files = []
    for path in sorted(p for p in final.rglob("*") if p.is_file()):
        files.append(
            {"path": path.relative_to(final).as_posix(), "sha256": _sha256_file(path), "bytes": path.stat().st_size}
        )
    if not files:
        raise ArtifactError(f"the final folder {final} is empty")
    ours = {(final / f["path"]).resolve(): f["sha256"] for f in files}
    for listed in result.get("files") or []:
        where = (output_dir / listed["path"]).resolve()
        if where in ours and ours[where] != listed.get("sha256"):
            raise ArtifactError(f"{listed['path']} does not match the sha256 the trainer reported")
    manifest = "".join(f"{f['sha256']}  {f['path']}\n" for f in files)
    if kind is None:
        kind = Artifact.Kind.ADAPTER if (result.get("finetune") or finetune) == "lora" else Artifact.Kind.WEIGHTS
    extra = {k: v for k, v in result.items() if k not in ("files", "final_dir", "status")}
    return ArtifactFiles(
        kind=kind,
        path=str(final.resolve()),
        sha256=hashlib.sha256(manifest.encode()).hexdigest(),
        size_bytes=sum(f["bytes"] for f in files),
        metadata={**extra, "files": files},
    )


def _last_lines(log_path: str, n: int = 20) -> str:
    return "\n".join(log_tail(log_path, 16384).splitlines()[-n:])


def _ended(rc: int | None, *, cancelled: bool, attempts: int, log_path: str, error: str = "") -> Outcome:
    """The outcome of an attempt that did not succeed."""
    if cancelled:
        return Outcome(JobStatus.CANCELLED, rc, "cancelled by an operator")
    if rc == EXIT_CANCELLED or (rc is not None and rc < 0):
        # Stopped from outside (the OOM killer, a signal to the worker's machine): run it again, and the
        # trainer resumes from its last checkpoint, unless it keeps happening.
        how = f"signal {-rc}" if rc < 0 else "SIGTERM"
        if attempts < conf.max_attempts():
            return Outcome(JobStatus.QUEUED, rc, f"attempt {attempts} stopped by {how}; queued again to resume")
        return Outcome(JobStatus.FAILED, rc, f"stopped by {how} on all {attempts} attempts")
    prefix = "bad spec" if rc == EXIT_BAD_SPEC else f"exit code {rc}"
    return Outcome(JobStatus.FAILED, rc, f"{prefix}: {error}\n{_last_lines(log_path)}".strip())


def _child(launcher: list[str], module: str, spec_path: Path, log_path: str, lock_fd: int) -> Child:
    return Child(
        [*launcher, "-m", module, "--spec", str(spec_path)],
        log_path=Path(log_path),
        cwd=Path(settings.BASE_DIR),
        keep_fds=(lock_fd,),
    )


def training_job_run(*, job_id: int) -> TrainingJob | None:
    """Run one training job to its end. None when it was not ours to run (finished, running elsewhere)."""
    job = TrainingJob.objects.filter(pk=job_id).first()
    if job is None or not job.output_dir:
        return None
    folder = Path(job.output_dir)
    with output_lock(folder) as lock:
        if lock is None:
            logger.info("training job %s: its folder is locked by a run on this machine; not starting", job_id)
            return None
        job = job_claim(TrainingJob, job_id=job_id, stale_after_s=conf.stale_after_s())
        if job is None:
            logger.info("training job %s is not ours to run (finished, or alive elsewhere)", job_id)
            return None
        attempt = job.attempts
        if job.cancel_requested:
            return training_job_finish(
                job_id=job_id, attempt=attempt, outcome=Outcome(JobStatus.CANCELLED, None, "cancelled before it ran")
            )
        spec_path = folder / "spec.json"
        _write_json(spec_path, {**job.spec, "job_id": job.pk, "output_dir": str(folder)})
        (folder / "result.json").unlink(missing_ok=True)  # an earlier attempt's result is not this one's
        tail = MetricsTail(folder / "metrics.jsonl", offset=job.metrics_offset)
        tail.end_partial_line()

        def beat() -> Beat:
            rows, offset = tail.read()
            state = training_job_beat(job_id=job_id, attempt=attempt, rows=rows, offset=offset)
            if state is not Beat.LOST:
                tail.advance(offset)
            return state

        what = f"training job {job_id} (attempt {attempt})"
        child = _child(conf.trainer_launcher(), conf.trainer_module(), spec_path, job.log_path, lock)
        logger.info("%s: trainer pid %s, log %s", what, child.pid, job.log_path)
        state, cancelled = _supervise(child, beat, what)
        if state is Beat.LOST:
            return None
        while True:  # the metrics written since the last beat, in batches
            before = tail.offset
            if _stored(beat, what) is Beat.LOST:
                return None
            if tail.offset == before:
                break
        rc = child.poll()
        result = _read_json(folder / "result.json")
        if rc == 0 and result.get("status") == "succeeded":
            try:
                found = artifact_files(result, output_dir=folder, finetune=job.spec.get("finetune", "lora"))
                outcome = Outcome(JobStatus.SUCCEEDED, rc, artifact=found)
            except ArtifactError as exc:
                outcome = Outcome(JobStatus.FAILED, rc, str(exc))
        else:
            outcome = _ended(
                rc, cancelled=cancelled, attempts=attempt, log_path=job.log_path, error=str(result.get("error", ""))
            )
        logger.info("%s ended: exit %s, %s", what, rc, outcome.status)
        return _stored(lambda: training_job_finish(job_id=job_id, attempt=attempt, outcome=outcome), what)


def _read_outputs(path: str) -> list[dict]:
    rows = []
    try:
        with open(path, encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
    except (OSError, ValueError) as exc:
        logger.warning("cannot read generation outputs %s: %s", path, exc)
    return [row for row in rows if isinstance(row, dict) and "id" in row]


def _generation_spec(job: GenerationJob) -> dict:
    spec = {**job.params, "base_model": job.base_model, "prompts_path": job.input_path, "output_path": job.output_path}
    if job.artifact is not None:
        key = "adapter_dir" if job.artifact.kind == Artifact.Kind.ADAPTER else "weights_dir"
        spec[key] = job.artifact.path
    return spec


def generation_job_run(*, job_id: int) -> GenerationJob | None:
    """Generate answers for a job's prompts that have none yet, and store them on its items."""
    job = GenerationJob.objects.filter(pk=job_id).first()
    if job is None or not job.output_dir:
        return None
    folder = Path(job.output_dir)
    with output_lock(folder) as lock:
        if lock is None:
            return None
        job = job_claim(GenerationJob, job_id=job_id, stale_after_s=conf.stale_after_s())
        if job is None:
            return None
        attempt = job.attempts
        if job.cancel_requested:
            outcome = Outcome(JobStatus.CANCELLED, None, "cancelled before it ran")
            return generation_job_finish(job_id=job_id, attempt=attempt, outcome=outcome)
        job = GenerationJob.objects.select_related("artifact").get(pk=job_id)
        pending = GenerationItem.objects.filter(job_id=job_id, text__isnull=True).order_by("pk")
        with open(job.input_path + ".tmp", "w", encoding="utf-8") as handle:
            for key, prompt in pending.values_list("key", "prompt").iterator(chunk_size=2000):
                handle.write(json.dumps({"id": key, "prompt": prompt}) + "\n")
        os.replace(job.input_path + ".tmp", job.input_path)
        Path(job.output_path).unlink(missing_ok=True)
        spec_path = folder / "gen.json"
        _write_json(spec_path, _generation_spec(job))
        what = f"generation job {job_id} (attempt {attempt})"
        child = _child([sys.executable], conf.generator_module(), spec_path, job.log_path, lock)
        try:
            state, cancelled = _supervise(child, lambda: generation_job_beat(job_id=job_id, attempt=attempt), what)
        except SoftTimeLimitExceeded:
            outcome = Outcome(JobStatus.FAILED, child.poll(), "stopped: over the generation time limit")
            return generation_job_finish(job_id=job_id, attempt=attempt, outcome=outcome)
        if state is Beat.LOST:
            return None
        rc = child.poll()
        if rc == 0:
            outputs = _read_outputs(job.output_path)
            for start in range(0, len(outputs), 2000):
                batch = outputs[start : start + 2000]
                store = partial(generation_outputs_store, job_id=job_id, attempt=attempt, outputs=batch)
                if not _stored(store, what):
                    return None
            missing = _stored(GenerationItem.objects.filter(job_id=job_id, text__isnull=True).count, what)
            outcome = (
                Outcome(JobStatus.SUCCEEDED, rc)
                if not missing
                else Outcome(JobStatus.FAILED, rc, f"{missing} prompts got no answer in {job.output_path}")
            )
        else:
            outcome = _ended(rc, cancelled=cancelled, attempts=attempt, log_path=job.log_path)
        return _stored(lambda: generation_job_finish(job_id=job_id, attempt=attempt, outcome=outcome), what)


def _merge_spec(job: MergeJob) -> dict:
    adapter = job.adapter
    spec = {
        "base_model": job.base_model,
        "adapter_dir": adapter.path,
        "output_dir": job.output_dir,
        "adapter_sha256": adapter.sha256,
    }
    if (adapter.spec or {}).get("architecture") in ("causal", "seq2seq"):
        spec["architecture"] = adapter.spec["architecture"]
    return spec


def merge_job_run(*, job_id: int) -> MergeJob | None:
    """Merge a job's adapter into its base in a subprocess and register the merged model."""
    job = MergeJob.objects.filter(pk=job_id).first()
    if job is None or not job.output_dir:
        return None
    folder = Path(job.output_dir)
    with output_lock(folder) as lock:
        if lock is None:
            return None
        job = job_claim(MergeJob, job_id=job_id, stale_after_s=conf.stale_after_s())
        if job is None:
            return None
        attempt = job.attempts
        if job.cancel_requested:
            outcome = Outcome(JobStatus.CANCELLED, None, "cancelled before it ran")
            return merge_job_finish(job_id=job_id, attempt=attempt, outcome=outcome)
        job = MergeJob.objects.select_related("adapter").get(pk=job_id)
        spec_path = folder / "spec.json"
        _write_json(spec_path, _merge_spec(job))
        (folder / "result.json").unlink(missing_ok=True)
        what = f"merge job {job_id} (attempt {attempt})"
        child = _child([sys.executable], conf.merger_module(), spec_path, job.log_path, lock)
        try:
            state, cancelled = _supervise(child, lambda: merge_job_beat(job_id=job_id, attempt=attempt), what)
        except SoftTimeLimitExceeded:
            outcome = Outcome(JobStatus.FAILED, child.poll(), "stopped: over the merge time limit")
            return merge_job_finish(job_id=job_id, attempt=attempt, outcome=outcome)
        if state is Beat.LOST:
            return None
        rc = child.poll()
        result = _read_json(folder / "result.json")
        if rc == 0 and result.get("status") == "succeeded":
            try:
                found = artifact_files(result, output_dir=folder, finetune="full", kind=Artifact.Kind.MERGED)
                outcome = Outcome(JobStatus.SUCCEEDED, rc, artifact=found)
            except ArtifactError as exc:
                outcome = Outcome(JobStatus.FAILED, rc, str(exc))
        else:
            outcome = _ended(
                rc, cancelled=cancelled, attempts=attempt, log_path=job.log_path, error=str(result.get("error", ""))
            )
        logger.info("%s ended: exit %s, %s", what, rc, outcome.status)
        return _stored(lambda: merge_job_finish(job_id=job_id, attempt=attempt, outcome=outcome), what)
