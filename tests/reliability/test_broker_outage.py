"""Jobs queued while the broker is down: approve-and-train, an import upload and an export pressed through the
real views while the test's own redis-server (broker and cache) is stopped. Each page answers without an
error and says the job is queued and that the queue was unreachable; the rows wait, marked unsent. The broker
comes back empty, a real worker starts, its start-up sweep sends the marked jobs (and the test sends each a
duplicate too), and every job runs exactly once."""

import json
import re

import pytest
import redis as redis_client
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from apps.core.enqueue import send
from apps.core.roles import Role
from apps.datasets.models import Dataset, ImportJob
from apps.datasets.services import RUN_IMPORT_TASK
from apps.experiments.exports.models import ExportJob
from apps.experiments.exports.services import RUN_EXPORT_TASK
from apps.experiments.models import Experiment
from apps.training.lifecycle import RUN_TRAINING_TASK
from apps.training.models import JobStatus, TrainingJob
from tests.apps.experiments.conftest import _training_root  # noqa: F401 - training folders under tmp_path
from tests.factories import UserFactory
from tests.integration.test_experiment_kill import Workers
from tests.integration.worker import WorkerProcess, wait_for
from tests.reliability.harness import REDIS_SERVER, RedisServer, this_process_on
from tests.reliability.test_concurrency_approve import _waiting_experiment

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the embedded file broker has no server to stop; PostgreSQL mode runs a Redis broker",
    ),
    pytest.mark.skipif(REDIS_SERVER is None, reason="needs the redis-server binary"),
]
UNREACHABLE_TEXT = "The task queue was unreachable when this job was queued"
TASKS = (RUN_TRAINING_TASK, RUN_IMPORT_TASK, RUN_EXPORT_TASK)
RECOVERERS = (
    "apps.training.services.training_job_recover_stale",
    "apps.datasets.services.import_job_recover_stale",
    "apps.experiments.exports.services.export_job_recover_stale",
)
RECORDS = [{"instruction": f"Outage question {i}?", "output": f"Answer {i}."} for i in range(5)]


@pytest.fixture
def redis(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    with this_process_on(server.url):
        yield server
    server.stop()


def _drained(server: RedisServer) -> bool:
    """No message left in the default and gpu queues, and none delivered but unacknowledged."""
    client = redis_client.Redis(port=server.port)
    try:
        return client.llen("default") == 0 and client.llen("gpu") == 0 and client.hlen("unacked") == 0
    finally:
        client.close()


def _page(client: Client, response) -> str:
    assert response.status_code == 302, (response.status_code, response.content[:2000])
    page = client.get(response["Location"])
    assert page.status_code == 200, page.status_code
    return page.content.decode()


def _approve(client: Client, experiment: Experiment) -> str:
    page = _page(client, client.post(f"/experiments/{experiment.pk}/approve/"))
    assert re.search(r"Approved: training job #\d+ is queued", page)
    return page


def _upload(client: Client) -> str:
    body = "".join(json.dumps(record) + "\n" for record in RECORDS).encode()
    upload = SimpleUploadedFile("outage.jsonl", body, content_type="application/jsonl")
    response = client.post("/datasets/import/", {"file": upload, "dataset_name": "outage", "format": "auto"})
    return _page(client, response)


def _export(client: Client, dataset: Dataset) -> str:
    return _page(client, client.post("/experiments/exports/", {"dataset": dataset.pk, "format": "openai"}))


def test_jobs_pressed_while_the_broker_is_down_are_queued_and_each_runs_once_when_it_is_back(redis, tmp_path):
    operator = UserFactory(role=Role.OPERATOR)
    client = Client()
    client.force_login(operator)
    experiment = _waiting_experiment()  # a round at its gate, driven in this process
    exported = experiment.dataset

    redis.kill()
    pages = {
        "training": _approve(client, experiment),
        "import": _upload(client),
        "export": _export(client, exported),
    }
    for kind, page in pages.items():
        assert UNREACHABLE_TEXT in page, kind
        assert "Waiting for a" in page and "worker to pick the job up" in page, kind
    jobs = {
        "training": TrainingJob.objects.get(round__experiment=experiment),
        "import": ImportJob.objects.get(),
        "export": ExportJob.objects.get(),
    }
    for kind, job in jobs.items():
        assert job.status == "queued" and job.queue_unreachable_at is not None, kind

    redis.start()  # back on the same port, empty: nothing was persisted
    env = {**Workers(tmp_path, tmp_path / "training").env, "CELERY_BROKER_URL": redis.url, "CACHE_URL": redis.url}
    worker = WorkerProcess(tmp_path, queues="default,gpu", **env).wait_ready()
    try:
        # Nothing else sends them: the worker's start-up sweep finds the marked rows.
        for path, job in zip(RECOVERERS, jobs.values(), strict=True):
            wait_for(lambda p=path, j=job: f"{p} [{j.pk}]" in worker.output(), 30, f"{path} to send", worker)
        # A duplicate of each message, as a second sweep or a redelivery would give: still one run each.
        for task, job in zip(TASKS, jobs.values(), strict=True):
            send(task, job.pk)
        for kind, job in jobs.items():
            model = type(job)
            wait_for(lambda m=model, pk=job.pk: m.objects.get(pk=pk).is_finished, 90, f"the {kind} job", worker)
        wait_for(lambda: _drained(redis), 30, "the duplicates to be consumed", worker)
    finally:
        worker.stop()
    training = TrainingJob.objects.get(pk=jobs["training"].pk)
    assert (training.status, training.attempts, training.queue_unreachable_at) == (JobStatus.SUCCEEDED, 1, None)
    assert TrainingJob.objects.filter(round__experiment=experiment).count() == 1
    imported = ImportJob.objects.get(pk=jobs["import"].pk)
    assert (imported.status, imported.attempts, imported.imported) == ("succeeded", 1, len(RECORDS))
    assert imported.dataset.instructions.count() == len(RECORDS)
    export = ExportJob.objects.get(pk=jobs["export"].pk)
    assert (export.status, export.attempts) == ("succeeded", 1), export.error
