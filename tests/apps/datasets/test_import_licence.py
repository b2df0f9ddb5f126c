"""An import records the data's licence on its dataset, and the import_dataset command records its job."""

import json

import pytest
from django.core.management import CommandError, call_command

from apps.datasets.importing import ImportFailed, dataset_import_file
from apps.datasets.models import Dataset, ImportJob

pytestmark = pytest.mark.django_db


def _file(tmp_path, n=2, name="data.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps({"instruction": f"Task {i}?", "output": "ok"}) + "\n" for i in range(n)))
    return path


def test_the_licence_is_recorded_and_another_one_refused(tmp_path):
    dataset_import_file(path=_file(tmp_path), dataset_name="nc", license="CC BY-NC 4.0")
    assert Dataset.objects.get(name="nc").license == "CC BY-NC 4.0"
    with pytest.raises(ImportFailed, match=r"records the licence 'CC BY-NC 4\.0', not 'MIT'"):
        dataset_import_file(path=_file(tmp_path, 3, "more.jsonl"), dataset_name="nc", license="MIT")
    assert Dataset.objects.get(name="nc").size == 2
    dataset_import_file(path=_file(tmp_path, 3, "more.jsonl"), dataset_name="nc")  # no licence given: appends
    assert Dataset.objects.get(name="nc").size == 3


def test_a_dataset_without_a_licence_takes_the_first_one_given(tmp_path):
    dataset_import_file(path=_file(tmp_path), dataset_name="open")
    assert Dataset.objects.get(name="open").license == ""
    dataset_import_file(path=_file(tmp_path, 3, "more.jsonl"), dataset_name="open", license="Apache-2.0")
    assert Dataset.objects.get(name="open").license == "Apache-2.0"


def test_the_command_records_a_finished_job_either_way(tmp_path):
    call_command("import_dataset", str(_file(tmp_path)), "--name", "cli", "--license", "MIT")
    job = ImportJob.objects.get()
    assert (job.status, job.imported, job.license, job.dataset.name) == ("succeeded", 2, "MIT", "cli")
    assert job.finished_at and job.started_at and job.attempts == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "fine"}\n{"nope": 1}\n')
    with pytest.raises(CommandError, match="invalid record"):
        call_command("import_dataset", str(bad), "--name", "cli2")
    failed = ImportJob.objects.get(dataset_name="cli2")
    assert (failed.status, failed.error_count, failed.blocked_by_invalid) == ("failed", 1, True)
    assert failed.errors[0]["location"] == "line 2" and failed.dataset_id is None
