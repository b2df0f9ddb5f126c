"""Recovery must not take a live import for a dead one when the cache has lost its heartbeat."""

import json
import threading

import pytest
from django.core.cache import cache
from django.db import connection, connections

from apps.datasets import services
from apps.datasets.models import ImportJob, Instruction
from apps.datasets.services import import_job_recover_stale, import_job_run

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_live_import_whose_heartbeat_the_cache_lost_is_not_queued_twice(tmp_path, monkeypatch):
    path = tmp_path / "up" / "tasks.jsonl"
    path.parent.mkdir()
    path.write_bytes(b"".join(json.dumps({"instruction": f"Name fruit {i}."}).encode() + b"\n" for i in range(30)))
    job = ImportJob.objects.create(dataset_name="fruit", source_path=str(path))

    in_import, finish = threading.Event(), threading.Event()
    real_touch = services.heartbeat_touch

    def touch_then_hold(kind, job_id, **progress):
        real_touch(kind, job_id, **progress)
        if progress["records"]:  # the import's own progress report, inside its transaction
            in_import.set()
            assert finish.wait(30)

    monkeypatch.setattr(services, "heartbeat_touch", touch_then_hold)
    sent = []
    _record_sends(monkeypatch, sent)
    results = []

    def worker():
        try:
            results.append(import_job_run(job_id=job.pk))
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert in_import.wait(30)
        cache.clear()  # a cache restart or an eviction: the live job's heartbeat is gone
        if connection.vendor == "sqlite":
            # The live import holds SQLite's one write lock; don't sit out the full 30 s busy timeout.
            connection.ensure_connection()
            connection.connection.execute("PRAGMA busy_timeout = 500")
        assert import_job_recover_stale(stale_after_s=0) == []
    finally:
        finish.set()
        thread.join(30)
    assert sent == [] and results[0].status == ImportJob.Status.SUCCEEDED
    job.refresh_from_db()
    assert (job.status, job.attempts, job.imported) == (ImportJob.Status.SUCCEEDED, 1, 30)
    assert Instruction.objects.count() == 30


def test_a_running_job_whose_worker_is_gone_is_queued_again(tmp_path, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    sent = []
    _record_sends(monkeypatch, sent)
    job = ImportJob.objects.create(
        dataset_name="x",
        source_path=str(tmp_path / "x"),
        status=ImportJob.Status.RUNNING,
        started_at=timezone.now() - timedelta(minutes=5),
    )
    assert import_job_recover_stale(stale_after_s=60) == [job.pk] and sent == [job.pk]
    job.refresh_from_db()
    assert job.status == ImportJob.Status.QUEUED


def _record_sends(monkeypatch, sent: list) -> None:
    """Catch the import tasks the services send (by name, now or on commit) instead of queueing them."""
    from apps.core import enqueue
    from apps.datasets import services

    def record(name, model, job_id):
        assert name == services.RUN_IMPORT_TASK
        sent.append(job_id)
        return True

    monkeypatch.setattr(enqueue, "send_job", record)
    monkeypatch.setattr(services, "send_job_on_commit", record)
