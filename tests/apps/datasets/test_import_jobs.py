"""Upload page, API and the job life cycle (run here in-process; tests/integration runs a real worker)."""

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from apps.core.heartbeat import heartbeat_touch
from apps.core.roles import Role
from apps.datasets.models import Dataset, ImportJob, Instruction
from apps.datasets.services import HEARTBEAT_KIND, import_job_recover_stale, import_job_run

pytestmark = pytest.mark.django_db

LINES = b"".join(json.dumps({"instruction": f"Explain idea number {i}."}).encode() + b"\n" for i in range(30))


def _upload(name="tasks.jsonl", content=LINES):
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def test_upload_without_javascript_redirects_to_the_job_page(client_for, django_capture_on_commit_callbacks):
    client = client_for(Role.OPERATOR)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/datasets/import/", {"file": _upload(), "dataset_name": "ideas", "format": "auto"})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/datasets/imports/{job.pk}/"
    assert job.status == ImportJob.Status.QUEUED and len(callbacks) == 1  # the task is sent after commit
    assert job.created_by == client.user


def test_htmx_upload_leads_to_the_job_page_which_polls_until_done(client_for):
    client = client_for(Role.OPERATOR)
    response = client.post(
        "/datasets/import/", {"file": _upload(), "dataset_name": "ideas", "format": "auto"}, HTTP_HX_REQUEST="true"
    )
    job = ImportJob.objects.get()
    # The browser goes to the job's own page (a URL that can be bookmarked), not a fragment swapped in place.
    assert response.status_code == 200 and response["HX-Redirect"] == f"/datasets/imports/{job.pk}/"
    page = client.get(f"/datasets/imports/{job.pk}/").content.decode()
    assert f'hx-get="/datasets/imports/{job.pk}/"' in page and "<title>Import #" in page
    assert client.get(f"/datasets/imports/{job.pk}/", HTTP_HX_REQUEST="true").status_code == 200

    import_job_run(job_id=job.pk)

    done = client.get(f"/datasets/imports/{job.pk}/", HTTP_HX_REQUEST="true")
    assert done.status_code == 286
    body = done.content.decode()
    assert "30 imported" in body and "hx-get" not in body
    assert Dataset.objects.get(name="ideas").size == 30


def test_failed_job_lists_its_problems_and_imports_nothing(client_for):
    client = client_for(Role.OPERATOR)
    bad = LINES + b'{"instruction": ""}\n'
    client.post("/datasets/import/", {"file": _upload(content=bad), "dataset_name": "ideas", "format": "auto"})
    job = import_job_run(job_id=ImportJob.objects.get().pk)
    assert job.status == ImportJob.Status.FAILED
    assert job.errors == [{"location": "line 31", "reason": "'instruction' is empty"}]
    assert not Dataset.objects.filter(name="ideas").exists() and Instruction.objects.count() == 0
    page = client.get(f"/datasets/imports/{job.pk}/").content.decode()
    assert "line 31" in page and "&#x27;instruction&#x27; is empty" in page


def test_upload_form_errors_are_shown(client_for):
    response = client_for(Role.OPERATOR).post("/datasets/import/", {"dataset_name": "x", "format": "auto"})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_api_import_returns_202_and_the_job(api_for):
    api = api_for(Role.OPERATOR)
    response = api.post("/api/v1/imports/new/", {"file": _upload(), "dataset": "api-ideas"}, format="multipart")
    assert response.status_code == 202
    job_id = response.json()["id"]
    assert response["Location"] == f"/api/v1/imports/{job_id}/"
    import_job_run(job_id=job_id)
    body = api.get(f"/api/v1/imports/{job_id}/").json()
    assert (body["status"], body["imported"], body["progress"]["percent"]) == ("succeeded", 30, 100)
    instructions = api.get(f"/api/v1/datasets/{body['dataset']}/instructions/?page_size=10").json()
    assert len(instructions["results"]) == 10 and instructions["next"]


def test_the_service_itself_checks_the_role(tmp_path):
    from django.core.exceptions import PermissionDenied

    from apps.datasets.services import import_job_create
    from tests.factories import user_with_role

    with pytest.raises(PermissionDenied):
        import_job_create(uploaded_file=_upload(), dataset_name="x", user=user_with_role(Role.REVIEWER))
    with pytest.raises(PermissionDenied):
        import_job_create(uploaded_file=_upload(), dataset_name="x", user=None)
    assert ImportJob.objects.count() == 0


def test_api_rejects_an_unknown_format(api_for):
    response = api_for(Role.OPERATOR).post(
        "/api/v1/imports/new/", {"file": _upload(), "dataset": "d", "format": "xml"}, format="multipart"
    )
    assert response.status_code == 400 and "format" in response.json()


def _queued_job(tmp_path, **fields) -> ImportJob:
    path = tmp_path / "up" / "tasks.jsonl"
    path.parent.mkdir()
    path.write_bytes(LINES)
    return ImportJob.objects.create(dataset_name="ideas", source_path=str(path), **fields)


def test_a_job_runs_once_however_often_it_is_delivered(tmp_path):
    job = _queued_job(tmp_path)
    assert import_job_run(job_id=job.pk).status == ImportJob.Status.SUCCEEDED
    assert import_job_run(job_id=job.pk) is None
    assert Instruction.objects.count() == 30


def test_stale_running_jobs_are_requeued_and_live_ones_are_not(tmp_path, django_capture_on_commit_callbacks):
    long_ago = timezone.now() - timedelta(minutes=10)
    dead = _queued_job(tmp_path, status=ImportJob.Status.RUNNING, started_at=long_ago)
    (tmp_path / "live").mkdir()
    alive = ImportJob.objects.create(
        dataset_name="other",
        source_path=str(tmp_path / "live" / "x"),
        status=ImportJob.Status.RUNNING,
        started_at=long_ago,
    )
    heartbeat_touch(HEARTBEAT_KIND, alive.pk, records=5)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        requeued = import_job_recover_stale(stale_after_s=60)

    assert requeued == [dead.pk] and len(callbacks) == 1
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert (dead.status, alive.status) == (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)
    assert import_job_run(job_id=dead.pk).status == ImportJob.Status.SUCCEEDED
    assert dead.attempts == 0 and ImportJob.objects.get(pk=dead.pk).attempts == 1


def test_untrusted_text_is_escaped_on_every_page(client_for, tmp_path):
    from apps.datasets.importing import dataset_import_file

    path = tmp_path / "xss.jsonl"
    payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    path.write_text(json.dumps({"instruction": payload, "input": payload, "output": payload, "category": "<b>"}) + "\n")
    dataset_import_file(path=path, dataset_name="<i>xss</i>")
    dataset = Dataset.objects.get()
    row = Instruction.objects.get()
    client = client_for(Role.VIEWER)
    for url in ["/", "/datasets/", f"/datasets/{dataset.pk}/", f"/datasets/{dataset.pk}/instructions/{row.pk}/"]:
        body = client.get(url).content.decode()
        assert "<script>alert" not in body and "<img src=x" not in body and "<i>xss</i>" not in body, url


def test_dataset_browsing_pages_by_cursor_and_filters(client_for):
    from tests.factories import DatasetFactory, InstructionFactory

    dataset = DatasetFactory()
    rows = [InstructionFactory(dataset=dataset, task_category="Math" if i % 2 else "Writing") for i in range(120)]
    # One text no other row shares a word prefix with: the factory's numbered texts would (7 and 70-79).
    rows[7].text = "Describe how volcanoes form."
    rows[7].save(update_fields=["text"])
    client = client_for(Role.VIEWER)
    first = client.get(f"/datasets/{dataset.pk}/")
    assert first.context["page"].next_after == rows[49].pk and len(first.context["page"].rows) == 50
    second = client.get(f"/datasets/{dataset.pk}/?after={rows[49].pk}")
    assert [r.pk for r in second.context["page"].rows] == [r.pk for r in rows[50:100]]
    maths = client.get(f"/datasets/{dataset.pk}/?category=Math", HTTP_HX_REQUEST="true")
    partial = maths.content.decode()
    assert "<html" not in partial  # only the rows partial
    assert partial.count("<td>Math</td>") == 50 and "<td>Writing</td>" not in partial
    found = client.get(f"/datasets/{dataset.pk}/", {"q": rows[7].text})
    assert [r.pk for r in found.context["page"].rows] == [rows[7].pk]


def test_a_queued_job_whose_message_was_lost_is_sent_again_once_per_period(tmp_path, monkeypatch):
    sent = []
    _record_sends(monkeypatch, sent)
    job = _queued_job(tmp_path)
    ImportJob.objects.filter(pk=job.pk).update(updated_at=timezone.now() - timedelta(minutes=10))

    assert import_job_recover_stale(stale_after_s=60) == [job.pk]
    assert import_job_recover_stale(stale_after_s=60) == []
    assert sent == [job.pk]


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
