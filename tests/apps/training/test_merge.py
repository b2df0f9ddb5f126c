"""Merging an adapter into its base from the registry: the real trainer makes a LoRA adapter of builtin:tiny,
the gpu task runs the real merger as a subprocess, and the merged model becomes an artifact of its own,
once however often the button is pressed."""

import hashlib
import io
import json
import os
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import RetortError
from apps.core.roles import Role, RoleRequired
from apps.training.lifecycle import RUN_MERGE_TASK, job_claim
from apps.training.models import Artifact, JobStatus, MergeJob, TrainingJob
from apps.training.running import merge_job_run, training_job_run
from apps.training.services import artifact_merge, merge_job_recover_stale, training_job_enqueue
from tests.apps.training.conftest import make_round
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def real_workers(settings, tmp_path, monkeypatch):
    """The gpu task runs the real trainer and merger, with the test session's model cache."""
    settings.RETORT_TRAINING_ROOT = tmp_path / "training"
    settings.RETORT_TRAINING_HEARTBEAT_S = 0.2
    cache = Path(os.environ.get("RETORT_VAR_DIR", "var/test")).resolve() / "models"
    monkeypatch.setenv("RETORT_MODEL_CACHE", str(cache))
    return settings


@pytest.fixture
def operator():
    return user_with_role(Role.OPERATOR)


@pytest.fixture
def adapter(real_workers, tmp_path, sent) -> Artifact:
    """A LoRA adapter of builtin:tiny, trained and registered by the real gpu task."""
    round_, snapshot, data = make_round(tmp_path, n_items=4)
    spec = {
        "base_model": "builtin:tiny",
        "data_path": data,
        "finetune": "lora",
        "max_steps": 3,
        "batch_size": 2,
        "max_length": 32,
        "learning_rate": 5e-2,
        "lora_r": 4,
        "lora_alpha": 8,
    }
    job = training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec=spec)
    done = training_job_run(job_id=job.pk)
    assert done.status == "succeeded", done.error
    sent.clear()
    return Artifact.objects.get(training_job=job)


@pytest.fixture
def row_only(training_round, tmp_path) -> Artifact:
    """An adapter's row and folder without training, for what never runs the merger."""
    round_, snapshot, _ = training_round
    job = TrainingJob.objects.create(
        round=round_, snapshot=snapshot, base_model="builtin:tiny", status=JobStatus.SUCCEEDED
    )
    folder = tmp_path / "final"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 4}))
    return Artifact.objects.create(
        kind=Artifact.Kind.ADAPTER,
        training_job=job,
        round=round_,
        path=str(folder),
        sha256="a" * 64,
        size_bytes=9,
        base_model="builtin:tiny",
    )


def _manifest_sha256(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(folder).as_posix()}\n" for p in files]
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _other(adapter: Artifact, kind: str, **fields) -> Artifact:
    values = {
        "kind": kind,
        "training_job": adapter.training_job,
        "round": adapter.round,
        "path": f"{adapter.path}-{kind}",
        "sha256": "e" * 64,
        "size_bytes": 1,
        "base_model": adapter.base_model,
        **fields,
    }
    return Artifact.objects.create(**values)


def test_pressing_merge_twice_makes_one_job_and_one_merged_artifact(adapter, operator, sent, client_for):
    first = artifact_merge(artifact_id=adapter.pk, by=operator)
    again = artifact_merge(artifact_id=adapter.pk, by=user_with_role(Role.OPERATOR))
    assert again.pk == first.pk and first.status == "queued" and first.base_model == "builtin:tiny"
    assert sent == [(RUN_MERGE_TASK, first.pk)]

    done = merge_job_run(job_id=first.pk)
    assert (done.status, done.exit_code, done.attempts) == ("succeeded", 0, 1), done.error
    merged = Artifact.objects.get(kind=Artifact.Kind.MERGED)
    assert done.merged_id == merged.pk and merged.source_id == adapter.pk
    assert (merged.training_job_id, merged.round_id) == (adapter.training_job_id, adapter.round_id)
    assert (merged.base_model, merged.snapshot_hash, merged.spec) == (
        adapter.base_model,
        adapter.snapshot_hash,
        adapter.spec,
    )
    folder = Path(merged.path)
    assert folder == (Path(first.output_dir) / "merged").resolve()
    assert merged.sha256 == _manifest_sha256(folder)  # hashed by the app, as every artifact is
    assert merged.metadata["adapter_sha256"] == adapter.sha256
    assert {f["path"] for f in merged.metadata["files"]} >= {"model.safetensors", "SHA256SUMS", "training_spec.json"}
    assert "merged " in Path(first.log_path).read_text()

    # After success: a press returns the same job, a redelivered message does nothing.
    assert artifact_merge(artifact_id=adapter.pk, by=operator).pk == first.pk
    assert merge_job_run(job_id=first.pk) is None
    assert sent == [(RUN_MERGE_TASK, first.pk)]
    assert MergeJob.objects.count() == 1 and Artifact.objects.filter(kind="merged").count() == 1

    client = client_for(Role.VIEWER)
    html = client.get("/training/artifacts/").content.decode()
    assert f"merged: #{merged.pk}" in html and f"of #{adapter.pk}" in html
    response = client.get(f"/training/artifacts/{merged.pk}/download/")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert {"README.md", "model.safetensors", "SHA256SUMS", "merge.json"} <= set(archive.namelist())
    assert archive.read("model.safetensors") == (folder / "model.safetensors").read_bytes()
    card = archive.read("README.md").decode()
    assert f"LoRA adapter #{adapter.pk}, manifest sha256 `{adapter.sha256}`" in card
    assert "AutoModelForCausalLM.from_pretrained" in card and merged.sha256 in card


def test_only_an_operator_merges_and_only_a_lora_adapter(row_only, operator, sent):
    adapter = row_only
    with pytest.raises(RoleRequired):
        artifact_merge(artifact_id=adapter.pk, by=user_with_role(Role.REVIEWER))
    weights = _other(adapter, Artifact.Kind.WEIGHTS)
    with pytest.raises(RetortError, match=rf"Artifact #{weights.pk} cannot be merged: full fine-tuning saved whole"):
        artifact_merge(artifact_id=weights.pk, by=operator)
    merged = _other(adapter, Artifact.Kind.MERGED, source=adapter)
    with pytest.raises(RetortError, match="it is already a merged model"):
        artifact_merge(artifact_id=merged.pk, by=operator)
    nameless = _other(adapter, Artifact.Kind.ADAPTER, base_model="")
    with pytest.raises(RetortError, match="the adapter does not name its base model"):
        artifact_merge(artifact_id=nameless.pk, by=operator)
    with pytest.raises(RetortError, match="There is no artifact #999999"):
        artifact_merge(artifact_id=999999, by=operator)
    assert not MergeJob.objects.exists() and sent == []


def test_a_changed_adapter_fails_its_merge_and_a_new_press_tries_again(adapter, operator, sent):
    config = Path(adapter.path, "adapter_config.json")
    original = config.read_text()
    config.write_text(original + "\n")  # the folder no longer hashes to the artifact's sha256
    failed = merge_job_run(job_id=artifact_merge(artifact_id=adapter.pk, by=operator).pk)
    assert (failed.status, failed.exit_code) == ("failed", 2)
    assert (
        failed.error.startswith("bad spec: ")
        and "adapter_sha256" in failed.error
        and "the adapter changed" in failed.error
    )
    assert not Artifact.objects.filter(kind="merged").exists()

    config.write_text(original)
    retry = artifact_merge(artifact_id=adapter.pk, by=operator)
    assert retry.pk != failed.pk and retry.status == "queued"
    assert merge_job_run(job_id=retry.pk).status == "succeeded"
    assert sent == [(RUN_MERGE_TASK, failed.pk), (RUN_MERGE_TASK, retry.pk)]


def test_the_database_keeps_one_live_merge_per_adapter(training_round):
    round_, snapshot, _ = training_round
    job = TrainingJob.objects.create(round=round_, snapshot=snapshot, base_model="m", status=JobStatus.SUCCEEDED)
    adapter = Artifact.objects.create(
        kind=Artifact.Kind.ADAPTER, training_job=job, round=round_, path="/a", sha256="a" * 64, size_bytes=1
    )
    MergeJob.objects.create(adapter=adapter, base_model="m", status=JobStatus.SUCCEEDED)
    MergeJob.objects.create(adapter=adapter, base_model="m", status=JobStatus.FAILED)
    with pytest.raises(IntegrityError), transaction.atomic():
        MergeJob.objects.create(adapter=adapter, base_model="m", status=JobStatus.QUEUED)
    Artifact.objects.create(kind="merged", source=adapter, training_job=job, path="/m1", sha256="b" * 64, size_bytes=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Artifact.objects.create(
            kind="merged", source=adapter, training_job=job, path="/m2", sha256="c" * 64, size_bytes=1
        )


def test_a_merge_whose_worker_died_is_queued_again(training_round, fake_trainer, sent):
    round_, snapshot, _ = training_round
    job = TrainingJob.objects.create(round=round_, snapshot=snapshot, base_model="m", status=JobStatus.SUCCEEDED)
    adapter = Artifact.objects.create(
        kind=Artifact.Kind.ADAPTER, training_job=job, round=round_, path="/a", sha256="a" * 64, size_bytes=1
    )
    merge = MergeJob.objects.create(adapter=adapter, base_model="m", output_dir="/tmp/x")
    alive = MergeJob.objects.create(adapter=_other(adapter, Artifact.Kind.ADAPTER), base_model="m", output_dir="/tmp/y")
    job_claim(MergeJob, job_id=merge.pk, stale_after_s=60)
    job_claim(MergeJob, job_id=alive.pk, stale_after_s=60)
    MergeJob.objects.filter(pk=merge.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert merge_job_recover_stale(stale_after_s=60) == [merge.pk]
    assert (
        MergeJob.objects.get(pk=merge.pk).status == "queued" and MergeJob.objects.get(pk=alive.pk).status == "running"
    )
    assert sent == [(RUN_MERGE_TASK, merge.pk)]


def test_the_registry_offers_merge_to_operators_and_says_why_not(row_only, client_for, sent):
    adapter = row_only
    weights = _other(adapter, Artifact.Kind.WEIGHTS)
    viewer = client_for(Role.VIEWER)
    html = viewer.get("/training/artifacts/").content.decode()
    assert "Merge into base" not in html
    assert viewer.post(f"/training/artifacts/{adapter.pk}/merge/").status_code == 403

    operator = client_for(Role.OPERATOR)
    html = operator.get("/training/artifacts/").content.decode()
    assert f'action="/training/artifacts/{adapter.pk}/merge/"' in html and "csrfmiddlewaretoken" in html
    assert f'action="/training/artifacts/{weights.pk}/merge/"' not in html
    refusal = f'data-testid="merge-refusal-{weights.pk}">Full fine-tuning saved whole weights'
    assert refusal in html and 'disabled title="full fine-tuning saved whole weights' in html
    assert operator.get(f"/training/artifacts/{adapter.pk}/merge/").status_code == 405

    response = operator.post(f"/training/artifacts/{adapter.pk}/merge/")
    assert response.status_code == 302 and response["Location"] == "/training/artifacts/"
    job = MergeJob.objects.get(adapter=adapter)
    html = operator.get("/training/artifacts/").content.decode()
    assert f"merge #{job.pk} queued" in html and f'action="/training/artifacts/{adapter.pk}/merge/"' not in html
    assert f"merge job #{job.pk} is queued" in html
    operator.post(f"/training/artifacts/{weights.pk}/merge/")
    assert "cannot be merged: full fine-tuning" in operator.get("/training/artifacts/").content.decode()


def test_the_merge_form_needs_the_csrf_token(row_only, operator, sent):
    adapter = row_only
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post(f"/training/artifacts/{adapter.pk}/merge/").status_code == 403
    assert not MergeJob.objects.exists()
    page = client.get("/training/artifacts/").content.decode()
    token = page.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    assert client.post(f"/training/artifacts/{adapter.pk}/merge/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert MergeJob.objects.filter(adapter=adapter).count() == 1
    assert json.loads(Path(adapter.path, "adapter_config.json").read_text())["r"] == 4
