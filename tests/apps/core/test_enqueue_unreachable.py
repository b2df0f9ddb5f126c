"""Jobs queued while the broker is unreachable (a real refused connection: this process's producer and cache
pointed at a port nothing listens on): the caller does not fail, the row is marked unsent and its page says
so, the recovery sweep sends the marked jobs once the broker answers and clears the mark, and a heartbeat
with the cache down fails nothing. The whole path through real views and a real worker is in
tests/reliability/test_broker_outage.py (PostgreSQL mode)."""

import pytest

from apps.core import enqueue
from apps.core.heartbeat import heartbeat_clear, heartbeat_get, heartbeat_touch
from apps.core.roles import Role
from apps.experiments.exports.models import ExportJob
from apps.experiments.exports.services import RUN_EXPORT_TASK, export_job_recover_stale, export_start
from tests.factories import DatasetFactory, InstructionFactory, UserFactory
from tests.reliability.harness import free_port, this_process_on

pytestmark = pytest.mark.django_db
UNREACHABLE_TEXT = "The task queue was unreachable when this job was queued"


def _unreachable():
    return this_process_on(f"redis://127.0.0.1:{free_port()}/0")


@pytest.fixture
def broker_down():
    with _unreachable():
        yield


def _export(django_capture_on_commit_callbacks) -> ExportJob:
    dataset = DatasetFactory()
    InstructionFactory(dataset=dataset)
    with django_capture_on_commit_callbacks(execute=True):
        job = export_start(by=UserFactory(role=Role.VIEWER), fmt="openai", dataset=dataset)
    job.refresh_from_db()
    return job


def test_an_export_queued_while_the_broker_is_down_is_marked_and_sent_by_the_sweep_once_it_is_back(
    django_capture_on_commit_callbacks, monkeypatch, client_for
):
    viewer = client_for(Role.VIEWER)  # signed in before the outage (signing in needs the cache)
    with _unreachable():
        job = _export(django_capture_on_commit_callbacks)
        assert job.status == ExportJob.Status.QUEUED and job.queue_unreachable_at is not None
        page = viewer.get(f"/experiments/exports/{job.pk}/").content.decode()
        assert UNREACHABLE_TEXT in page and "Waiting for a worker" in page
        # Still down: the sweep tries, keeps the mark, and does not fail.
        assert export_job_recover_stale(stale_after_s=3600) == []
        job.refresh_from_db()
        assert job.queue_unreachable_at is not None

    sent = []
    monkeypatch.setattr(enqueue, "send", lambda name, *args: sent.append((name, *args)))  # the broker is back
    assert export_job_recover_stale(stale_after_s=3600) == [job.pk]
    assert export_job_recover_stale(stale_after_s=3600) == []
    assert sent == [(RUN_EXPORT_TASK, job.pk)]
    job.refresh_from_db()
    assert job.queue_unreachable_at is None
    assert UNREACHABLE_TEXT not in viewer.get(f"/experiments/exports/{job.pk}/").content.decode()


def test_an_export_sent_while_the_broker_answers_is_not_marked(django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(enqueue, "send", lambda name, *args: None)
    job = _export(django_capture_on_commit_callbacks)
    assert job.queue_unreachable_at is None


def test_heartbeats_with_the_cache_down_fail_nothing(broker_down):
    heartbeat_touch("import", 1, records=3, bytes=10, total=20)
    assert heartbeat_get("import", 1) is None
    heartbeat_clear("import", 1)
