"""Queueing a round's training once, cancelling, queueing generation."""

import threading
from pathlib import Path

import pytest
from django.db import connection, connections

from apps.core.errors import RetortError
from apps.core.roles import Role
from apps.training.lifecycle import RUN_GENERATION_TASK, RUN_MERGE_TASK, RUN_TRAINING_TASK
from apps.training.models import GenerationItem, JobStatus, TrainingJob
from apps.training.services import training_generation_enqueue, training_job_cancel, training_job_enqueue
from apps.training.signals import training_job_finished
from config.celery import app
from tests.apps.training.conftest import make_round
from tests.factories import user_with_role


@pytest.mark.django_db
def test_enqueue_makes_one_job_and_sends_one_message_however_often_pressed(
    fake_trainer, training_round, sent, django_capture_on_commit_callbacks
):
    round_, snapshot, data = training_round
    spec = {"base_model": "builtin:tiny", "data_path": data, "max_steps": 3}
    with django_capture_on_commit_callbacks(execute=True):
        jobs = [training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec=spec) for _ in range(3)]
    assert len({job.pk for job in jobs}) == 1
    job = TrainingJob.objects.get()
    assert (job.status, job.base_model, job.snapshot_id, job.attempts) == ("queued", "builtin:tiny", snapshot.pk, 0)
    assert Path(job.output_dir).name.startswith(f"job-{job.pk}-") and job.log_path.startswith(job.output_dir)
    assert sent == [(RUN_TRAINING_TASK, job.pk)]


@pytest.mark.django_db
def test_a_finished_failed_job_makes_room_for_a_new_one_but_a_succeeded_one_does_not(
    fake_trainer, training_round, sent
):
    round_, snapshot, data = training_round
    spec = {"base_model": "builtin:tiny", "data_path": data}
    first = training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec=spec)
    TrainingJob.objects.filter(pk=first.pk).update(status=JobStatus.FAILED)
    second = training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec=spec)
    assert second.pk != first.pk
    TrainingJob.objects.filter(pk=second.pk).update(status=JobStatus.SUCCEEDED)
    assert training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec=spec).pk == second.pk


@pytest.mark.django_db
def test_the_database_refuses_a_second_active_job_for_a_round(fake_trainer, training_round):
    from django.db import IntegrityError, transaction

    round_, snapshot, _ = training_round
    TrainingJob.objects.create(round=round_, snapshot=snapshot, base_model="m", status=JobStatus.RUNNING)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingJob.objects.create(round=round_, snapshot=snapshot, base_model="m", status=JobStatus.QUEUED)
    TrainingJob.objects.create(round=round_, snapshot=snapshot, base_model="m", status=JobStatus.FAILED)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "spec,message",
    [
        ({"data_path": "/x.jsonl"}, "base_model"),
        ({"base_model": "builtin:tiny"}, "data_path"),
        ({"base_model": "m", "data_path": "/x", "output_dir": "/elsewhere"}, "output_dir"),
    ],
)
def test_enqueue_refuses_a_spec_it_cannot_run(fake_trainer, training_round, sent, spec, message):
    round_, snapshot, _ = training_round
    with pytest.raises(RetortError, match=message):
        training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec=spec)
    assert not TrainingJob.objects.exists() and not sent


@pytest.mark.django_db
def test_enqueue_refuses_another_snapshot_for_a_round_that_has_a_job(fake_trainer, tmp_path, sent):
    round_, snapshot, data = make_round(tmp_path)
    _, other, _ = make_round(tmp_path)
    training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec={"base_model": "m", "data_path": data})
    with pytest.raises(RetortError, match="already has training job"):
        training_job_enqueue(round_id=round_.pk, snapshot_id=other.pk, spec={"base_model": "m", "data_path": data})


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_pressing_at_once_make_one_job_and_one_message(fake_trainer, tmp_path, sent):
    """The approve button pressed by 20 requests at the same moment (PostgreSQL in CI, SQLite here too)."""
    round_, snapshot, data = make_round(tmp_path)
    spec = {"base_model": "builtin:tiny", "data_path": data}
    barrier, results, errors = threading.Barrier(20), [], []

    def press():
        try:
            barrier.wait()
            results.append(training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec=spec).pk)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=press) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(results) == 20 and len(set(results)) == 1
    assert TrainingJob.objects.count() == 1
    assert sent == [(RUN_TRAINING_TASK, results[0])], connection.vendor


@pytest.mark.django_db
def test_cancelling_a_queued_job_ends_it_and_tells_the_engine(
    fake_trainer, training_round, sent, django_capture_on_commit_callbacks
):
    round_, snapshot, data = training_round
    job = training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec={"base_model": "m", "data_path": data})
    heard = []

    def receiver(sender, **kwargs):
        heard.append(kwargs)

    training_job_finished.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            training_job_cancel(job_id=job.pk, by=user_with_role(Role.OPERATOR))
    finally:
        training_job_finished.disconnect(receiver)
    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == ("cancelled", True)
    assert [(h["job_id"], h["round_id"], h["status"]) for h in heard] == [(job.pk, round_.pk, "cancelled")]


@pytest.mark.django_db
def test_cancel_needs_the_operator_role(fake_trainer, training_round, sent):
    from django.core.exceptions import PermissionDenied

    round_, snapshot, data = training_round
    job = training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec={"base_model": "m", "data_path": data})
    with pytest.raises(PermissionDenied):
        training_job_cancel(job_id=job.pk, by=user_with_role(Role.REVIEWER))
    assert TrainingJob.objects.get().status == "queued"


@pytest.mark.django_db
def test_generation_enqueue_stores_the_prompts_and_sends_its_task(
    fake_trainer, training_round, sent, django_capture_on_commit_callbacks
):
    round_, _, _ = training_round
    with django_capture_on_commit_callbacks(execute=True):
        job = training_generation_enqueue(
            round_id=round_.pk,
            artifact_id=None,
            base_model="builtin:tiny",
            prompts=[("answer:1:0", "Name a colour."), ("answer:2:0", "Name a fruit.")],
            params={"max_new_tokens": 16},
        )
    assert job.prompts_count == 2 and job.status == "queued"
    assert list(GenerationItem.objects.order_by("pk").values_list("key", "prompt", "text")) == [
        ("answer:1:0", "Name a colour.", None),
        ("answer:2:0", "Name a fruit.", None),
    ]
    assert sent == [(RUN_GENERATION_TASK, job.pk)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "prompts,params,message",
    [
        ([], {}, "empty"),
        ([("k", "p"), ("k", "q")], {}, "twice"),
        ([("k", 3)], {}, "pair of strings"),
        ([("k", "p")], {"beam": 4}, "Unknown generation parameters beam"),
    ],
)
def test_generation_enqueue_refuses_bad_input(fake_trainer, training_round, sent, prompts, params, message):
    round_, _, _ = training_round
    with pytest.raises(RetortError, match=message):
        training_generation_enqueue(
            round_id=round_.pk, artifact_id=None, base_model="m", prompts=prompts, params=params
        )
    assert not sent


def test_the_task_names_the_services_send_are_registered_on_the_gpu_queue():
    app.loader.import_default_modules()
    for name in (RUN_TRAINING_TASK, RUN_GENERATION_TASK, RUN_MERGE_TASK):
        assert name in app.tasks
        assert app.amqp.router.route({}, name)["queue"].name == "gpu"
