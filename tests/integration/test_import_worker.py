"""Imports through a real Celery worker process, including a worker killed mid-import."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.heartbeat import heartbeat_get
from apps.core.roles import Role
from apps.datasets.models import Dataset, ImportJob, Instruction
from apps.datasets.services import HEARTBEAT_KIND, import_job_create
from tests.factories import user_with_role
from tests.integration.worker import WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def workers(tmp_path):
    started = []

    def start(**env):
        worker = WorkerProcess(tmp_path, **env).wait_ready()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def _job(job_id):
    return ImportJob.objects.get(pk=job_id)


def test_an_upload_is_imported_by_a_worker(workers, shared_data):
    worker = workers()
    content = (shared_data / "self-instruct_seed_tasks.jsonl").read_bytes()
    job = import_job_create(
        uploaded_file=SimpleUploadedFile("seeds.jsonl", content),
        dataset_name="seeds",
        user=user_with_role(Role.OPERATOR),
    )
    wait_for(lambda: _job(job.pk).is_finished, 60, "the import to finish", worker)
    job = _job(job.pk)
    assert (job.status, job.imported, job.worker.split(":")[0] != "") == ("succeeded", 175, True)
    assert Dataset.objects.get(name="seeds").size == 175


def test_a_worker_killed_mid_import_loses_nothing(workers, tmp_path):
    n = 60_000
    lines = b"".join(
        json.dumps({"instruction": f"Summarise report {i} in one line."}).encode() + b"\n" for i in range(n)
    )
    first = workers(RETORT_STALE_AFTER_S=1)
    job = import_job_create(
        uploaded_file=SimpleUploadedFile("big.jsonl", lines), dataset_name="big", user=user_with_role(Role.OPERATOR)
    )

    def progressed():
        beat = heartbeat_get(HEARTBEAT_KIND, job.pk) or {}
        return beat if beat.get("records", 0) > 0 else None

    beat = wait_for(progressed, 60, "the import to make progress", first)
    assert beat["records"] < n
    first.kill()
    assert _job(job.pk).status == ImportJob.Status.RUNNING
    assert Instruction.objects.count() == 0  # the dead worker's transaction never committed

    second = workers(RETORT_STALE_AFTER_S=1)  # recovers stale work as it starts
    wait_for(lambda: _job(job.pk).is_finished, 120, "the recovered import to finish", second)
    job = _job(job.pk)
    assert (job.status, job.imported, job.attempts) == ("succeeded", n, 2)
    assert Instruction.objects.filter(dataset__name="big").count() == n
    assert "Re-queued work left by a dead worker" in second.output()
