"""What an import reports once it is over, on the page, in the API and on the command line; the API's
import list order; how dataset pages print numbers and metadata; the instruction origins."""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from apps.core.roles import Role
from apps.datasets.forms import InstructionFilterForm
from apps.datasets.models import Dataset, ImportJob, Instruction
from apps.datasets.services import import_job_run
from tests.factories import DatasetFactory, InstructionFactory

pytestmark = pytest.mark.django_db

GOOD = b"".join(json.dumps({"instruction": f"Explain idea number {i}."}).encode() + b"\n" for i in range(12))
BAD = GOOD + b'{"instruction": ""}\n' + b"not json\n"


def _failed_job(client) -> ImportJob:
    upload = SimpleUploadedFile("ideas.jsonl", BAD)
    client.post("/datasets/import/", {"file": upload, "dataset_name": "ideas", "format": "auto"})
    return import_job_run(job_id=ImportJob.objects.get().pk)


def test_a_failed_all_or_nothing_import_reports_zero_imported_everywhere(client_for, api_for):
    client = client_for(Role.OPERATOR)
    job = _failed_job(client)
    assert (job.status, job.imported, job.duplicates, job.records_read) == ("failed", 0, 0, 14)
    assert job.blocked_by_invalid and not Dataset.objects.exists()

    card = client.get(f"/datasets/imports/{job.pk}/").content.decode()
    assert "Nothing was imported." in card and "14 records read · 0 imported · 0 duplicates skipped" in card
    assert "12 imported" not in card and "line 13" in card and "line 14" in card
    table = client.get("/datasets/import/").content.decode()
    assert '<td class="num">0</td>' in table and '<td class="num">12</td>' not in table

    body = api_for(Role.VIEWER).get(f"/api/v1/imports/{job.pk}/").json()
    assert (body["imported"], body["duplicates"], body["records_read"]) == (0, 0, 14)


def test_each_surface_says_how_to_skip_invalid_records_in_its_own_words(client_for, api_for, tmp_path):
    client = client_for(Role.OPERATOR)
    job = _failed_job(client)
    page = client.get(f"/datasets/imports/{job.pk}/").content.decode()
    assert "--skip-invalid" not in page and "skip_invalid" not in page
    assert "upload the file again with <b>Skip invalid records</b> ticked" in page
    form = client.get("/datasets/import/").content.decode()
    assert '<label for="id_skip_invalid">Skip invalid records</label>' in form

    body = api_for(Role.VIEWER).get(f"/api/v1/imports/{job.pk}/").json()
    assert "--skip-invalid" not in body["message"] and "skip_invalid=true" in body["hint"]

    path = tmp_path / "ideas.jsonl"
    path.write_bytes(BAD)
    with pytest.raises(CommandError, match="Use --skip-invalid to import the valid records"):
        call_command("import_dataset", str(path), "--name", "cli", stderr=io.StringIO())


def test_a_failure_that_skipping_cannot_cure_offers_no_hint(client_for, api_for):
    client = client_for(Role.OPERATOR)
    upload = SimpleUploadedFile("empty.jsonl", b"\n\n")
    client.post("/datasets/import/", {"file": upload, "dataset_name": "empty", "format": "jsonl"})
    job = import_job_run(job_id=ImportJob.objects.get().pk)
    assert job.status == "failed" and not job.blocked_by_invalid
    assert "Skip invalid records</b> ticked" not in client.get(f"/datasets/imports/{job.pk}/").content.decode()
    assert api_for(Role.VIEWER).get(f"/api/v1/imports/{job.pk}/").json()["hint"] == ""


def test_the_imports_api_lists_newest_first_by_cursor(api_for):
    ids = [ImportJob.objects.create(dataset_name=f"d{i}", source_path="/x").pk for i in range(5)]
    api = api_for(Role.VIEWER)
    first = api.get("/api/v1/imports/?page_size=3").json()
    assert [j["id"] for j in first["results"]] == ids[::-1][:3] and "cursor=" in first["next"]
    second = api.get(first["next"]).json()
    assert [j["id"] for j in second["results"]] == ids[::-1][3:]


def test_metadata_shows_as_escaped_json(client_for):
    row = InstructionFactory(metadata={"source": "<b>self-instruct</b>", "turns": [1, 2], "ok": True})
    body = client_for(Role.VIEWER).get(f"/datasets/{row.dataset_id}/instructions/{row.pk}/").content.decode()
    assert "&quot;ok&quot;: true" in body and "&quot;turns&quot;: [\n    1," in body
    assert "&lt;b&gt;self-instruct&lt;/b&gt;" in body and "True" not in body and "{&#x27;" not in body


def test_counts_use_one_thousands_separator_everywhere(client_for):
    dataset = DatasetFactory(size=1234567)
    client = client_for(Role.OPERATOR)
    assert '<td class="num">1,234,567</td>' in client.get("/datasets/").content.decode()
    assert "1,234,567 instructions" in client.get(f"/datasets/{dataset.pk}/").content.decode()
    ImportJob.objects.create(
        dataset_name="big", source_path="/x", status="succeeded", records_read=2500, imported=2400, duplicates=1000
    )
    job_page = client.get(f"/datasets/imports/{ImportJob.objects.get().pk}/").content.decode()
    assert "2,500 records read · 2,400 imported · 1,000 duplicates skipped" in job_page


def test_origins_are_the_two_that_rows_are_made_with():
    # An imported dataset stays as imported (it is the seed pool as it is); experiments mark what they make.
    assert Instruction.Origin.values == ["imported", "generated"]
    assert [v for v, _ in InstructionFilterForm().fields["origin"].choices][1:] == Instruction.Origin.values
