"""Round exports of real engine runs (the gateway against the local test server, real sockets): exactly the
snapshot's items, reviewers' edits applied, with provenance, scores and review decisions; the bundle with the
round's adapter."""

import hashlib
import json
import zipfile

import orjson
import pytest
from django.core.management import CommandError, call_command

from apps.core.roles import Role
from apps.datasets.importing import dataset_import_file
from apps.datasets.models import Dataset, Instruction
from apps.experiments.exports.services import export_source, export_write
from apps.experiments.models import Experiment, Lineage, Round, Snapshot
from apps.experiments.services import experiment_approve_and_train, experiment_create, experiment_start
from apps.reviews.models import ReviewTask, ReviewVerdict
from apps.training.models import Artifact
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset
from tests.factories import DatasetFactory, InstructionFactory, UserFactory

pytestmark = pytest.mark.django_db

PROBLEMS = [
    ("Tom has 3 apples and buys 4 more.\nHow many apples does he have now?", "( 3.0 + 4.0 )"),
    ("Ann had 9 sweets and ate 2 of them.\nHow many sweets are left?", "( 9.0 - 2.0 )"),
    ("A class has 12 girls and 15 boys.\nHow many children are in the class?", "( 12.0 + 15.0 )"),
    ("Sam ran 7 km on Monday and 8 km on Tuesday.\nHow far did he run?", "( 7.0 + 8.0 )"),
]
EDITED = "Add the two numbers the problem gives, and that is the answer."


@pytest.fixture(autouse=True)
def _media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


def _decide(task, reviewer, decision: str, text: str) -> None:
    """A reviewer's verdict and the task settled by it (where tasks keep their resolution, that too)."""
    ReviewVerdict.objects.create(task=task, reviewer=reviewer, decision=decision, edited_text=text)
    settled = {"status": ReviewTask.Status.DONE}
    if any(f.name == "decision" for f in ReviewTask._meta.concrete_fields):
        settled.update(decision=decision, edited_text=text)
    ReviewTask.objects.filter(pk=task.pk).update(**settled)


def _step_by_step(server) -> Experiment:
    dataset = DatasetFactory(name="svamp-export", license="MIT (SVAMP)")
    for text, gold in PROBLEMS:
        InstructionFactory(dataset=dataset, text=text, gold_label=gold)
    endpoint = {"base_url": server.url, "model": "rationale-svamp", "name": "sbs-export-t", "max_concurrency": 4}
    config = {
        "name": "sbs-export",
        "recipe": "step_by_step",
        "dataset": dataset.name,
        "endpoints": {"teacher": endpoint},
        "student": {"model": "builtin:tiny"},
        "params": {"dataset_kind": "svamp", "batch_size": 4},
        "review": {"rationales": "all"},
        "seed": 7,
    }
    experiment = experiment_create(config=config)
    experiment_start(experiment_id=experiment.pk)
    return drive(experiment, train=False)


def test_a_step_by_step_round_exports_its_snapshot_with_the_reviewers_edits(llm_server, tmp_path):
    experiment = _step_by_step(llm_server)
    assert experiment.status == "waiting_review"
    round_ = Round.objects.get(experiment=experiment)
    with pytest.raises(CommandError, match="has no snapshot yet"):
        call_command(
            "export_dataset", "-", "--format", "openai", "--round", "sbs-export:1", "--out", str(tmp_path / "x")
        )
    reviewer = UserFactory(role=Role.REVIEWER)
    tasks = list(ReviewTask.objects.filter(round=round_, kind="rationale").order_by("subject_id"))
    rejected, edited = tasks[0].subject_id, tasks[1].subject_id
    for task in tasks:
        decision = {rejected: "reject", edited: "edit"}.get(task.subject_id, "accept")
        _decide(task, reviewer, decision, EDITED if decision == "edit" else "")
    experiment = drive(experiment, train=False)
    assert experiment.status == "waiting_approval", experiment.status_reason
    experiment_approve_and_train(experiment_id=experiment.pk, by=UserFactory(role=Role.OPERATOR))
    snapshot = Snapshot.objects.get(round=round_)
    items = list(snapshot.items.order_by("position"))
    assert items and len(items) == snapshot.size

    out = tmp_path / "sbs.json"
    call_command("export_dataset", "svamp-export", "--format", "alpaca", "--round", "sbs-export:1",
                 "--out", str(out), "--with-review")  # fmt: skip
    records = orjson.loads(out.read_bytes())
    assert [(r["instruction"], r["output"], r["kind"]) for r in records] == [
        (i.prompt, i.target, i.kind) for i in items
    ]
    by_response = {}
    for item, record in zip(items, records, strict=True):
        by_response.setdefault(item.response_id, []).append(record)
    assert rejected not in by_response
    predict, explain = by_response[edited]
    assert (predict["kind"], explain["kind"]) == ("predict", "explain")
    assert explain["output"] == EDITED and predict["rationale"] == explain["rationale"] == EDITED
    assert predict["label"] == predict["output"]
    assert explain["review"] == {
        "kind": "rationale",
        "decision": "edit",
        "reviewer": reviewer.username,
        "edited": True,
        "automatic": False,
    }
    manifest = json.loads((tmp_path / "sbs.json.manifest.json").read_text())
    assert manifest["experiment"]["round"]["snapshot_hash"] == snapshot.hash
    assert manifest["experiment"]["config"] == experiment.config and manifest["counts"]["records"] == len(items)
    assert manifest["review"]["reviewed"] == len(items) and manifest["review"]["automatic"] == 0
    assert [t["model"] for t in manifest["terms"]] == ["rationale-svamp"]
    assert manifest["licences"][0]["license"] == "MIT (SVAMP)" and manifest["warnings"] == []

    # Re-imported, the export is the same records.
    dataset_import_file(path=out, dataset_name="sbs-back")
    back = Instruction.objects.filter(dataset=Dataset.objects.get(name="sbs-back")).order_by("pk")
    assert [(b.text, b.reference_output) for b in back] == [(i.prompt, i.target) for i in items]


def test_a_lion_round_exports_exactly_its_snapshot_with_provenance_and_scores(llm_server, tmp_path, unrelated):
    dataset = seed_dataset()
    dataset.license = "Apache-2.0"
    dataset.save()
    experiment = experiment_create(config=lion_config(llm_server, dataset))
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    experiment = drive(experiment)
    assert experiment.status == "finished", experiment.status_reason
    round_ = Round.objects.get(experiment=experiment, index=2)
    snapshot = Snapshot.objects.get(round=round_)
    items = list(snapshot.items.select_related("instruction").order_by("position"))
    assert items

    source = export_source(
        experiment=experiment.name, round_index=2, options={"provenance": True, "scores": True, "review": True}
    )
    manifest = export_write(source=source, fmt="parquet", out=tmp_path / "round2.parquet")
    import pyarrow.parquet as pq

    rows = pq.read_table(tmp_path / "round2.parquet").to_pylist()
    assert len(rows) == snapshot.size == manifest["counts"]["records"]
    for item, row in zip(items, rows, strict=True):
        i = item.instruction
        assert (row["instruction"], row["input"], row["output"]) == (i.text, i.input, item.target)
        lineage = Lineage.objects.get(instruction=i)  # round 2 trains on what round 1 generated
        assert row["provenance"]["lineage"] == lineage.origin and row["provenance"]["seed_id"] == lineage.seed_id
        assert row["provenance"]["experiment"] == experiment.name and row["provenance"]["round"] == 2
        assert row["provenance"]["origin"] == "generated"
    scored = [r for r in rows if r["scores"]]
    assert scored and all(r["scores"]["experiment"] == experiment.name for r in scored)
    assert manifest["review"]["automatic"] == manifest["review"]["reviewed"] > 0
    [licence] = manifest["licences"]
    assert licence["generated_by"] == experiment.name and licence["derived_from"][0]["license"] == "Apache-2.0"
    assert {t["role"] for t in manifest["terms"]} == {"teacher", "generator", "judge"}

    # The bundle carries the round's adapter, hashed.
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"\x00weights" * 100)
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    Artifact.objects.create(
        kind="adapter", round=round_, path=str(adapter), sha256="f" * 64, size_bytes=810, base_model="builtin:tiny"
    )
    out = tmp_path / "bundle.zip"
    call_command("export_dataset", "-", "--format", "bundle", "--round", f"{experiment.name}:2", "--out", str(out))
    with zipfile.ZipFile(out) as archive:
        inside = json.loads(archive.read("manifest.json"))
        model = {f["name"]: f["sha256"] for f in inside["artifact"]["files"]}
        assert set(model) == {"model/adapter_model.safetensors", "model/adapter_config.json"}
        for name, digest in model.items():
            assert hashlib.sha256(archive.read(name)).hexdigest() == digest
        for f in inside["files"]:
            assert hashlib.sha256(archive.read(f["name"])).hexdigest() == f["sha256"]
        openai_lines = archive.read("openai.jsonl").splitlines()
    assert len(openai_lines) == snapshot.size
    with pytest.raises(CommandError, match="is not one of experiment"):
        call_command("export_dataset", "unrelated", "--format", "openai", "--round", f"{experiment.name}:2",
                     "--out", str(tmp_path / "y.jsonl"))  # fmt: skip


@pytest.fixture
def unrelated():
    return DatasetFactory(name="unrelated")


def test_a_missing_round_is_named(llm_server, tmp_path, unrelated):
    experiment = experiment_create(config=lion_config(llm_server, seed_dataset(), name="lion-missing"))
    with pytest.raises(CommandError, match=r"has no round 5 \(rounds: \[1\]\)"):
        call_command("export_dataset", "-", "--format", "openai", "--round", f"{experiment.name}:5",
                     "--out", str(tmp_path / "z.jsonl"))  # fmt: skip
    with pytest.raises(CommandError, match="category, origin and id filters apply to dataset exports"):
        call_command("export_dataset", "-", "--format", "openai", "--round", f"{experiment.name}:1",
                     "--category", "Math", "--out", str(tmp_path / "z.jsonl"))  # fmt: skip
