"""The gpu task's run of a job, with a real subprocess (the stand-in trainer of fake_trainer.py)."""

import hashlib
import json
import os
import signal
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from apps.core.recovery import stale_work_recover
from apps.training.lifecycle import RUN_TRAINING_TASK, job_claim
from apps.training.models import Artifact, JobStatus, TrainingJob, TrainingMetric
from apps.training.running import training_job_run
from apps.training.services import training_job_cancel, training_job_enqueue
from apps.training.signals import training_job_finished
from tests.apps.training.conftest import refuse_first_calls

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def heard():
    events = []

    def receiver(sender, **kwargs):
        events.append((kwargs["job_id"], kwargs["status"]))

    training_job_finished.connect(receiver)
    yield events
    training_job_finished.disconnect(receiver)


def _job(training_round, **spec) -> TrainingJob:
    round_, snapshot, data = training_round
    return training_job_enqueue(
        round_id=round_.pk, snapshot_id=snapshot.pk, spec={"base_model": "builtin:tiny", "data_path": data, **spec}
    )


def _starts(job) -> list[tuple[int, int]]:
    path = Path(job.output_dir) / "starts.log"
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines()] if path.exists() else []


def _in_thread(job_id):
    box = {}

    def run():
        try:
            box["result"] = training_job_run(job_id=job_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def _wait(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def test_a_job_trains_streams_its_metrics_and_registers_its_artifact(fake_trainer, training_round, sent, heard):
    job = _job(training_round, max_steps=5, fake={"sleep_s": 0.05})
    done = training_job_run(job_id=job.pk)
    assert (done.status, done.exit_code, done.attempts, done.steps) == ("succeeded", 0, 1, 5)
    folder = Path(job.output_dir)
    assert json.loads((folder / "spec.json").read_text()) == {**job.spec, "job_id": job.pk, "output_dir": str(folder)}
    assert "fake trainer: starting at step 0" in Path(job.log_path).read_text()
    names = set(TrainingMetric.objects.filter(job=job).values_list("name", flat=True))
    assert names == {"epoch", "loss", "lr", "tokens_per_s", "mos_p.0", "mos_p.1"}
    assert TrainingMetric.objects.filter(job=job).count() == 6 * 5
    assert TrainingMetric.objects.get(job=job, name="loss", step=4).value == pytest.approx(0.25)
    assert done.metrics_offset == (folder / "metrics.jsonl").stat().st_size

    artifact = Artifact.objects.get(training_job=job)
    final = folder / "final"
    lines = sorted(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in final.iterdir())
    lines.sort(key=lambda line: line.split("  ")[1])
    assert artifact.sha256 == hashlib.sha256("".join(lines).encode()).hexdigest()
    assert artifact.size_bytes == sum(p.stat().st_size for p in final.iterdir())
    assert (artifact.kind, artifact.path, artifact.round_id) == ("adapter", str(final.resolve()), job.round_id)
    assert (artifact.base_model, artifact.snapshot_hash) == ("builtin:tiny", training_round[1].hash)
    assert artifact.spec == job.spec and artifact.metadata["steps"] == 5
    assert heard == [(job.pk, "succeeded")]
    assert training_job_run(job_id=job.pk) is None  # a late redelivery of a finished job does nothing


def test_a_redelivered_message_for_a_job_alive_elsewhere_starts_nothing(fake_trainer, training_round, sent):
    job = _job(training_round)
    assert job_claim(TrainingJob, job_id=job.pk, stale_after_s=60).attempts == 1  # another worker has it
    assert training_job_run(job_id=job.pk) is None
    job.refresh_from_db()
    assert (job.status, job.attempts, _starts(job)) == ("running", 1, [])


def test_a_second_delivery_while_the_first_runs_here_starts_no_second_run(fake_trainer, training_round, sent, heard):
    job = _job(training_round, max_steps=8, fake={"sleep_s": 0.15})
    thread, box = _in_thread(job.pk)
    _wait(lambda: _starts(job), what="the trainer to start")
    assert training_job_run(job_id=job.pk) is None
    thread.join(30)
    assert box["result"].status == "succeeded"
    job.refresh_from_db()
    assert (job.attempts, len(_starts(job))) == (1, 1)
    assert heard == [(job.pk, "succeeded")]


def test_a_job_whose_worker_died_is_claimed_again_and_resumes_from_its_checkpoint(fake_trainer, training_round, sent):
    job = _job(training_round, max_steps=5)
    job_claim(TrainingJob, job_id=job.pk, stale_after_s=60)
    # What the dead worker's trainer left: a checkpoint at step 2, three metric lines, half a fourth.
    folder = Path(job.output_dir)
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.json").write_text('{"step": 2}')
    lines = [json.dumps({"step": s, "loss": 9.0}) + "\n" for s in (1, 2, 3)]
    (folder / "metrics.jsonl").write_text("".join(lines) + '{"step": 4, "lo')
    TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=3600))

    done = training_job_run(job_id=job.pk)
    assert (done.status, done.attempts) == ("succeeded", 2)
    assert [start for _, start in _starts(job)] == [2]
    losses = dict(TrainingMetric.objects.filter(job=job, name="loss").values_list("step", "value"))
    # Steps 1–2 from the dead run; 3 reported again by the resumed run, whose value wins; 4–5 new. The half
    # line was skipped as malformed once the resumed trainer appended after it.
    assert losses == {1: 9.0, 2: 9.0, 3: pytest.approx(1 / 3), 4: pytest.approx(0.25), 5: pytest.approx(0.2)}


def test_cancel_stops_the_trainer_and_frees_the_worker(fake_trainer, training_round, sent, heard):
    job = _job(training_round, max_steps=1000, fake={"sleep_s": 0.1})
    thread, box = _in_thread(job.pk)
    _wait(lambda: TrainingJob.objects.get(pk=job.pk).steps >= 2, what="a few steps")
    training_job_cancel(job_id=job.pk)
    thread.join(15)
    assert not thread.is_alive(), "the task did not return after cancel"
    done = box["result"]
    assert (done.status, done.exit_code, done.error) == ("cancelled", 3, "cancelled by an operator")
    assert 2 <= done.steps < 1000
    assert json.loads((Path(job.output_dir) / "checkpoints" / "last.json").read_text())["step"] >= done.steps
    assert heard == [(job.pk, "cancelled")]
    assert not Artifact.objects.exists()


def test_a_trainer_that_ignores_sigterm_is_killed_after_the_grace(fake_trainer, training_round, sent):
    fake_trainer.RETORT_TRAINING_CANCEL_GRACE_S = 0.5
    job = _job(training_round, max_steps=1000, fake={"sleep_s": 0.1, "ignore_term": True})
    thread, box = _in_thread(job.pk)
    _wait(lambda: TrainingJob.objects.get(pk=job.pk).steps >= 1, what="a step")
    training_job_cancel(job_id=job.pk)
    thread.join(15)
    assert (box["result"].status, box["result"].exit_code) == ("cancelled", -signal.SIGKILL)


def test_a_crash_fails_the_job_with_the_end_of_its_log(fake_trainer, training_round, sent, heard):
    job = _job(training_round, max_steps=5, fake={"crash_at": 3})
    done = training_job_run(job_id=job.pk)
    assert (done.status, done.exit_code, done.steps) == ("failed", 1, 2)
    assert "RuntimeError: fake crash" in done.error and "Traceback: fake crash" in done.error
    assert heard == [(job.pk, "failed")]


def test_a_bad_spec_fails_the_job_and_says_so(fake_trainer, training_round, sent):
    round_, snapshot, _ = training_round
    job = training_job_enqueue(
        round_id=round_.pk, snapshot_id=snapshot.pk, spec={"base_model": "m", "data_path": "/nowhere.jsonl"}
    )
    done = training_job_run(job_id=job.pk)
    assert (done.status, done.exit_code) == ("failed", 2)
    assert done.error.startswith("bad spec") and "no file at /nowhere.jsonl" in done.error


def test_files_that_do_not_match_the_reported_sha256_register_nothing(fake_trainer, training_round, sent):
    done = training_job_run(job_id=_job(training_round, max_steps=2, fake={"wrong_sha": True}).pk)
    assert done.status == "failed" and "does not match the sha256" in done.error
    assert not Artifact.objects.exists()


def test_a_trainer_killed_from_outside_is_queued_again_and_resumes(fake_trainer, training_round, sent):
    job = _job(training_round, max_steps=30, fake={"sleep_s": 0.1})
    thread, box = _in_thread(job.pk)
    _wait(lambda: TrainingJob.objects.get(pk=job.pk).steps >= 3, what="a few steps")
    os.kill(_starts(job)[0][0], signal.SIGKILL)  # the OOM killer, say
    thread.join(15)
    interrupted = box["result"]
    assert (interrupted.status, interrupted.exit_code, interrupted.attempts) == ("queued", -signal.SIGKILL, 1)
    assert "queued again to resume" in interrupted.error
    assert sent.count((RUN_TRAINING_TASK, job.pk)) == 2  # the enqueue's and the retry's
    done = training_job_run(job_id=job.pk)
    assert (done.status, done.attempts, done.steps) == ("succeeded", 2, 30)
    first, second = _starts(job)
    assert first[1] == 0 and second[1] >= 3
    assert TrainingMetric.objects.filter(job=job, name="loss").count() == 30


def test_a_worker_that_lost_its_job_stops_its_trainer_and_writes_nothing(fake_trainer, training_round, sent, heard):
    job = _job(training_round, max_steps=1000, fake={"sleep_s": 0.1})
    thread, box = _in_thread(job.pk)
    _wait(lambda: TrainingJob.objects.get(pk=job.pk).steps >= 1, what="a step")
    # Another delivery took the job over (as after a stale heartbeat): attempts moved on.
    TrainingJob.objects.filter(pk=job.pk).update(attempts=2)
    thread.join(15)
    assert box["result"] is None
    job.refresh_from_db()
    assert (job.status, job.exit_code, heard) == ("running", None, [])


def test_the_periodic_sweep_requeues_stale_training_and_leaves_live_jobs_alone(fake_trainer, tmp_path, sent):
    from tests.apps.training.conftest import make_round

    jobs = []
    for _ in range(4):
        round_, snapshot, data = make_round(tmp_path)
        jobs.append(
            training_job_enqueue(
                round_id=round_.pk, snapshot_id=snapshot.pk, spec={"base_model": "m", "data_path": data}
            )
        )
    stale, live, waiting, done = jobs
    for job in (stale, live):
        job_claim(TrainingJob, job_id=job.pk, stale_after_s=60)
    old = timezone.now() - timedelta(hours=1)
    TrainingJob.objects.filter(pk=stale.pk).update(heartbeat_at=old)
    TrainingJob.objects.filter(pk=waiting.pk).update(updated_at=old)
    TrainingJob.objects.filter(pk=done.pk).update(status=JobStatus.SUCCEEDED, updated_at=old)
    sent.clear()

    result = stale_work_recover(stale_after_s=60)
    assert sorted(result["apps.training.services.training_job_recover_stale"]) == sorted([stale.pk, waiting.pk])
    assert sorted(sent) == sorted([(RUN_TRAINING_TASK, stale.pk), (RUN_TRAINING_TASK, waiting.pk)])
    statuses = dict(TrainingJob.objects.values_list("pk", "status"))
    assert [statuses[j.pk] for j in jobs] == ["queued", "running", "queued", "succeeded"]
    sent.clear()
    assert stale_work_recover(stale_after_s=60)["apps.training.services.training_job_recover_stale"] == []

    resumed = training_job_run(job_id=stale.pk)
    assert (resumed.status, resumed.attempts) == ("succeeded", 2)


def test_a_database_that_drops_the_last_writes_once_each_still_ends_the_job_with_every_metric(
    fake_trainer, training_round, sent, heard, monkeypatch
):
    """PostgreSQL restarting as the trainer exits: the final beats and the outcome are written again, not
    lost with a failed task (the job would stay 'running' until a sweep)."""
    from apps.training import running

    exited = []
    supervise = running._supervise

    def supervise_then_note(*args):
        state = supervise(*args)
        exited.append(True)  # the trainer has exited: the writes from here on are the job's last
        return state

    job = _job(training_round, max_steps=5, fake={"sleep_s": 0.05})
    monkeypatch.setattr(running, "_supervise", supervise_then_note)
    names = ("training_job_beat", "training_job_finish")
    refused = refuse_first_calls(monkeypatch, running, names, armed=lambda: bool(exited))
    done = training_job_run(job_id=job.pk)
    assert refused == ["training_job_beat", "training_job_finish"]
    assert (done.status, done.attempts, done.steps) == ("succeeded", 1, 5)
    assert TrainingMetric.objects.filter(job=job).count() == 6 * 5
    assert Artifact.objects.filter(training_job=job).count() == 1
    assert heard == [(job.pk, "succeeded")]
