"""The artifact registry, its zip download with a model card, and the job page that polls until the end."""

import io
import zipfile
from pathlib import Path

import pytest
from django.http import StreamingHttpResponse

from apps.core.roles import Role
from apps.training.models import Artifact, JobStatus, TrainingJob, TrainingMetric

pytestmark = pytest.mark.django_db


@pytest.fixture
def artifact(training_round, tmp_path):
    round_, snapshot, _ = training_round
    job = TrainingJob.objects.create(
        round=round_, snapshot=snapshot, base_model="builtin:tiny", status=JobStatus.SUCCEEDED, steps=5, attempts=1
    )
    final = tmp_path / "final"
    (final / "sub").mkdir(parents=True)
    weights = bytes(range(256)) * 8000  # 2 MB: more than one chunk of the stream
    (final / "adapter_model.safetensors").write_bytes(weights)
    (final / "sub" / "tokenizer.json").write_text('{"v": 1}')
    files = [
        {"path": "adapter_model.safetensors", "sha256": "1" * 64, "bytes": len(weights)},
        {"path": "sub/tokenizer.json", "sha256": "2" * 64, "bytes": 8},
    ]
    return Artifact.objects.create(
        kind=Artifact.Kind.ADAPTER,
        training_job=job,
        round=round_,
        path=str(final),
        sha256="f" * 64,
        size_bytes=len(weights) + 8,
        base_model="builtin:tiny",
        snapshot_hash=snapshot.hash,
        spec={"base_model": "builtin:tiny", "finetune": "lora", "lora_r": 16},
        metadata={"files": files, "steps": 5, "train_loss": 0.5, "finetune": "lora"},
    )


def test_the_registry_lists_every_artifact_with_its_hashes(client_for, artifact):
    page = client_for(Role.VIEWER).get("/training/artifacts/")
    assert page.status_code == 200
    html = page.content.decode()
    assert artifact.sha256[:16] in html and artifact.snapshot_hash[:12] in html and "builtin:tiny" in html
    assert f"/training/artifacts/{artifact.pk}/download/" in html
    assert f"{artifact.round.experiment.name} · round 1" in html


def test_the_pages_need_a_role(client_for, artifact):
    client = client_for(None)
    assert client.get("/training/artifacts/").status_code == 403
    assert client.get(f"/training/artifacts/{artifact.pk}/download/").status_code == 403
    assert client.get(f"/training/jobs/{artifact.training_job_id}/").status_code == 403


def test_the_download_streams_a_zip_of_the_files_and_a_model_card(client_for, artifact):
    response = client_for(Role.VIEWER).get(f"/training/artifacts/{artifact.pk}/download/")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "application/zip"
    assert (
        response["Content-Disposition"].startswith('attachment; filename="exp-')
        and ".zip" in response["Content-Disposition"]
    )
    chunks = list(response.streaming_content)
    assert len(chunks) > 3  # written and sent piece by piece, not built whole
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    assert archive.testzip() is None
    assert archive.namelist() == ["README.md", "adapter_model.safetensors", "sub/tokenizer.json"]
    final = Path(artifact.path)
    assert archive.read("adapter_model.safetensors") == (final / "adapter_model.safetensors").read_bytes()
    card = archive.read("README.md").decode()
    assert "builtin:tiny" in card and artifact.snapshot_hash in card and artifact.sha256 in card
    assert f"{'1' * 64}  adapter_model.safetensors" in card and '"lora_r": 16' in card
    assert "AutoPeftModelForCausalLM" in card


def test_a_download_whose_files_are_gone_is_a_404(client_for, artifact):
    Artifact.objects.filter(pk=artifact.pk).update(path="/nowhere/at/all")
    assert client_for(Role.VIEWER).get(f"/training/artifacts/{artifact.pk}/download/").status_code == 404


def test_the_job_page_shows_status_metrics_and_log_and_polls_until_the_end(client_for, training_round, tmp_path):
    round_, snapshot, _ = training_round
    log = tmp_path / "train.log"
    log.write_text("fake trainer: starting at step 0\nstep 2 loss 0.5\n")
    job = TrainingJob.objects.create(
        round=round_,
        snapshot=snapshot,
        base_model="builtin:tiny",
        status=JobStatus.RUNNING,
        attempts=2,
        steps=2,
        log_path=str(log),
    )
    TrainingMetric.objects.bulk_create([TrainingMetric(job=job, step=s, name="loss", value=1 / s) for s in (1, 2)])
    client = client_for(Role.VIEWER)
    page = client.get(f"/training/jobs/{job.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and 'hx-trigger="every 2s"' in html
    assert "step 2 loss 0.5" in html and "0.5000" in html and "Cancel training" not in html
    assert client.get(f"/training/jobs/{job.pk}/", HTTP_HX_REQUEST="true").status_code == 200
    TrainingJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, exit_code=0)
    finished = client.get(f"/training/jobs/{job.pk}/", HTTP_HX_REQUEST="true")
    assert finished.status_code == 286 and "hx-trigger" not in finished.content.decode()
    assert f"#{job.pk}" in client.get("/training/jobs/").content.decode()


def test_an_operator_cancels_from_the_job_page_and_a_viewer_cannot(client_for, training_round):
    round_, snapshot, _ = training_round
    job = TrainingJob.objects.create(round=round_, snapshot=snapshot, base_model="m", status=JobStatus.QUEUED)
    assert client_for(Role.VIEWER).post(f"/training/jobs/{job.pk}/cancel/").status_code == 403
    operator = client_for(Role.OPERATOR)
    assert "Cancel training" in operator.get(f"/training/jobs/{job.pk}/").content.decode()
    response = operator.post(f"/training/jobs/{job.pk}/cancel/")
    assert response.status_code == 302 and response["Location"] == f"/training/jobs/{job.pk}/"
    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == ("cancelled", True)
