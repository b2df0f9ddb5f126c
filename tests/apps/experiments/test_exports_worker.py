"""An export job run by a real Celery worker process, as the exports page starts it."""

import hashlib
from pathlib import Path

import pytest

from apps.core.roles import Role
from apps.datasets.formats import content_hash
from apps.experiments.exports.models import ExportJob
from apps.experiments.exports.services import export_start
from tests.factories import DatasetFactory, InstructionFactory, user_with_role
from tests.integration.worker import WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_worker_writes_the_bundle_and_records_its_files(tmp_path, settings):
    media = tmp_path / "media"
    settings.MEDIA_ROOT = media
    dataset = DatasetFactory(name="worker-export", license="Apache-2.0")
    for n in range(30):
        text = f"Explain idea number {n} in one sentence."
        InstructionFactory(dataset=dataset, text=text, content_hash=content_hash(text), reference_output=f"Idea {n}.")
    worker = WorkerProcess(tmp_path, RETORT_MEDIA_ROOT=media).wait_ready()
    try:
        job = export_start(by=user_with_role(Role.VIEWER), fmt="bundle", dataset=dataset.name, provenance=True)
        wait_for(lambda: ExportJob.objects.get(pk=job.pk).is_finished, 120, "the export to finish", worker)
    finally:
        worker.stop()
    job = ExportJob.objects.get(pk=job.pk)
    assert job.status == "succeeded", job.error
    assert job.done == job.total == 4 * 30 and job.worker and job.attempts == 1
    [bundle] = job.files
    path = Path(job.output_dir) / bundle["name"]
    assert path.is_relative_to(media) and hashlib.sha256(path.read_bytes()).hexdigest() == bundle["sha256"]
    assert job.manifest["counts"]["records"] == 30 and job.manifest["options"]["provenance"] is True
