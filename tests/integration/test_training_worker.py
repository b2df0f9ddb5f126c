"""Training through real Celery gpu workers: builtin:tiny trained by workers.training.run, a duplicate message
given to a second worker, and a worker killed mid-run whose job resumes on the next one."""

import json
import os
import time
from pathlib import Path

import pytest

from apps.core.enqueue import send
from apps.training.lifecycle import RUN_TRAINING_TASK
from apps.training.models import Artifact, TrainingJob, TrainingMetric
from apps.training.services import training_job_enqueue
from tests.apps.training.conftest import FAKE, make_round
from tests.integration.worker import WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PAIRS = [
    ("Name a primary colour.", "Red is a primary colour."),
    ("What is two plus two?", "Two plus two is four."),
    ("Give a synonym of quick.", "Fast."),
    ("Which planet is closest to the sun?", "Mercury."),
]


@pytest.fixture
def training_root(settings, tmp_path):
    settings.RETORT_TRAINING_ROOT = tmp_path / "training"
    return settings.RETORT_TRAINING_ROOT


@pytest.fixture
def gpu_workers(tmp_path, training_root):
    started = []
    cache = Path(os.environ.get("RETORT_VAR_DIR", "var/test")).resolve() / "models"

    def start(**env):
        env = {"RETORT_TRAINING_HEARTBEAT_S": "0.2", "RETORT_MODEL_CACHE": str(cache), **env}
        worker = WorkerProcess(tmp_path, queues="gpu", **env).wait_ready()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _job(job_id) -> TrainingJob:
    return TrainingJob.objects.get(pk=job_id)


def _starts(job) -> list[list[int]]:
    path = Path(job.output_dir) / "starts.log"
    return [list(map(int, line.split())) for line in path.read_text().splitlines()] if path.exists() else []


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_gpu_worker_trains_builtin_tiny_and_registers_its_artifact(gpu_workers, tmp_path):
    worker = gpu_workers()
    round_, snapshot, _ = make_round(tmp_path)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "target": t, "kind": "sft"}) + "\n" for p, t in PAIRS))
    spec = {
        "base_model": "builtin:tiny",
        "data_path": str(data),
        "finetune": "full",
        "max_steps": 4,
        "batch_size": 2,
        "max_length": 64,
        "save_every": 2,
        "learning_rate": 5e-3,
        "warmup_ratio": 0.0,
    }
    job = training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec=spec)
    wait_for(lambda: _job(job.pk).is_finished, 300, "the training job to finish", worker)
    job = _job(job.pk)
    assert (job.status, job.exit_code, job.attempts, job.steps) == ("succeeded", 0, 1, 4), job.error
    losses = list(TrainingMetric.objects.filter(job=job, name="loss").order_by("step").values_list("step", flat=True))
    assert losses == [1, 2, 3, 4]
    artifact = Artifact.objects.get(training_job=job)
    files = artifact.metadata["files"]
    assert artifact.kind == "weights" and any(f["path"].endswith(".safetensors") for f in files)
    assert artifact.size_bytes == sum(f["bytes"] for f in files) > 0
    assert (artifact.snapshot_hash, artifact.base_model) == (snapshot.hash, "builtin:tiny")
    assert Path(artifact.path, "training_spec.json").is_file()


def test_a_second_worker_given_the_same_message_starts_no_second_run(gpu_workers, tmp_path):
    first = gpu_workers(RETORT_TRAINER_MODULE=FAKE)
    round_, snapshot, data = make_round(tmp_path)
    # The run holds before step 3 until the duplicate has been dealt with: the first worker must still be busy
    # with the job when the duplicate arrives, or it would take the duplicate itself.
    release = tmp_path / "release"
    spec = {"base_model": "m", "data_path": data, "max_steps": 6, "fake": {"hold_at": 3, "hold_file": str(release)}}
    job = training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec=spec)
    wait_for(lambda: _job(job.pk).steps >= 2, 60, "the first run to make progress", first)
    second = gpu_workers(RETORT_TRAINER_MODULE=FAKE)
    send(RUN_TRAINING_TASK, job.pk)  # the message again, as a broker redelivers it
    wait_for(
        lambda: "run_training_job" in second.output() and "succeeded in" in second.output(),
        60,
        "the second worker to take and drop the duplicate",
        second,
    )
    release.touch()
    wait_for(lambda: _job(job.pk).is_finished, 60, "the job to finish", first)
    job = _job(job.pk)
    assert (job.status, job.attempts, len(_starts(job))) == ("succeeded", 1, 1)
    assert TrainingMetric.objects.filter(job=job, name="loss").count() == 6


def test_a_worker_killed_mid_run_leaves_a_job_the_next_worker_resumes(gpu_workers, tmp_path):
    first = gpu_workers(RETORT_TRAINER_MODULE=FAKE)
    round_, snapshot, data = make_round(tmp_path)
    spec = {"base_model": "m", "data_path": data, "max_steps": 30, "fake": {"sleep_s": 0.1}}
    job = training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec=spec)
    wait_for(lambda: _job(job.pk).steps >= 3, 60, "the first run to make progress", first)
    trainer_pid = _starts(_job(job.pk))[0][0]
    first.kill()
    # The trainer is told by the kernel that its worker died (SIGTERM), checkpoints and exits.
    wait_for(lambda: not _pid_alive(trainer_pid), 30, "the orphaned trainer to stop")
    assert _job(job.pk).status == "running"
    time.sleep(1.5)  # let the dead worker's heartbeat go stale
    second = gpu_workers(RETORT_TRAINER_MODULE=FAKE, RETORT_STALE_AFTER_S=1)  # recovers stale work as it starts
    wait_for(lambda: _job(job.pk).is_finished, 60, "the recovered job to finish", second)
    job = _job(job.pk)
    assert (job.status, job.attempts, job.steps) == ("succeeded", 2, 30)
    (_, first_start), (_, resumed_at) = _starts(job)
    assert first_start == 0 and resumed_at >= 3
    assert TrainingMetric.objects.filter(job=job, name="loss").count() == 30
    assert "Re-queued work left by a dead worker" in second.output()


def test_a_gpu_worker_merges_a_lora_adapter_once_however_often_pressed(gpu_workers, tmp_path):
    from apps.core.roles import Role
    from apps.training.models import MergeJob
    from apps.training.services import artifact_merge
    from tests.factories import user_with_role

    worker = gpu_workers()
    round_, snapshot, _ = make_round(tmp_path)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "target": t}) + "\n" for p, t in PAIRS))
    spec = {"base_model": "builtin:tiny", "data_path": str(data), "finetune": "lora", "max_steps": 2, "batch_size": 2}
    job = training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec={**spec, "max_length": 64})
    wait_for(lambda: _job(job.pk).is_finished, 300, "the LoRA training job to finish", worker)
    adapter = Artifact.objects.get(training_job=job, kind="adapter")

    operator = user_with_role(Role.OPERATOR)
    presses = [artifact_merge(artifact_id=adapter.pk, by=operator) for _ in range(3)]
    assert len({press.pk for press in presses}) == 1
    merge = presses[0]
    wait_for(lambda: MergeJob.objects.get(pk=merge.pk).is_finished, 300, "the merge job to finish", worker)
    merge = MergeJob.objects.get(pk=merge.pk)
    assert (merge.status, merge.exit_code, merge.attempts) == ("succeeded", 0, 1), merge.error
    merged = Artifact.objects.get(kind="merged")
    assert merge.merged_id == merged.pk and merged.source_id == adapter.pk
    assert Path(merged.path, "model.safetensors").is_file() and Path(merged.path, "SHA256SUMS").is_file()
    assert artifact_merge(artifact_id=adapter.pk, by=operator).pk == merge.pk
    assert MergeJob.objects.count() == 1


def test_cancel_stops_the_run_and_frees_the_worker_for_the_next_job(gpu_workers, tmp_path):
    from apps.training.services import training_job_cancel

    worker = gpu_workers(RETORT_TRAINER_MODULE=FAKE)
    round_a, snapshot_a, data_a = make_round(tmp_path)
    long_spec = {"base_model": "m", "data_path": data_a, "max_steps": 100_000, "fake": {"sleep_s": 0.1}}
    first = training_job_enqueue(round_id=round_a.pk, snapshot_id=snapshot_a.pk, spec=long_spec)
    wait_for(lambda: _job(first.pk).steps >= 2, 60, "the first run to make progress", worker)
    round_b, snapshot_b, data_b = make_round(tmp_path)
    second = training_job_enqueue(
        round_id=round_b.pk, snapshot_id=snapshot_b.pk, spec={"base_model": "m", "data_path": data_b, "max_steps": 3}
    )
    # One job at a time (solo pool, concurrency 1): the second waits while the first trains on.
    steps = _job(first.pk).steps
    wait_for(lambda: _job(first.pk).steps >= steps + 3, 60, "the first run to go on", worker)
    assert (_job(second.pk).status, _job(second.pk).attempts) == ("queued", 0)
    trainer_pid = _starts(_job(first.pk))[0][0]

    training_job_cancel(job_id=first.pk)
    wait_for(lambda: _job(first.pk).is_finished, 60, "the cancelled job to end", worker)
    first = _job(first.pk)
    assert (first.status, first.exit_code, first.error) == ("cancelled", 3, "cancelled by an operator")
    assert not _pid_alive(trainer_pid)
    wait_for(lambda: _job(second.pk).is_finished, 60, "the same worker to run the next job", worker)
    second = _job(second.pk)
    assert (second.status, second.steps, second.worker) == ("succeeded", 3, first.worker)
    assert not Artifact.objects.filter(training_job=first).exists()
