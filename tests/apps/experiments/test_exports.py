"""Dataset exports end to end: each format written, re-imported by the importer, compared; the manifest's
hashes, licences and terms; the export_dataset command's output and errors; jobs, the page and downloads."""

import hashlib
import io
import json
import zipfile

import orjson
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from apps.core.roles import Role, RoleRequired
from apps.datasets.formats import content_hash
from apps.datasets.formats.openai_check import check_openai_jsonl
from apps.datasets.importing import dataset_import_file
from apps.datasets.models import Dataset, Instruction
from apps.experiments.exports.models import ExportJob
from apps.experiments.exports.services import ExportError, export_run, export_source, export_start, export_write
from apps.llm.models import LLMEndpoint
from apps.llm.terms import endpoint_terms
from tests.factories import DatasetFactory, InstructionFactory, user_with_role
from workers.llm.prompts import task_text

pytestmark = pytest.mark.django_db
FORMATS = ("alpaca", "sharegpt", "openai", "parquet")


@pytest.fixture(autouse=True)
def _media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


def _instruction(dataset, text, **fields):
    turns = (fields.get("metadata") or {}).get("turns")
    return InstructionFactory(
        dataset=dataset, text=text, content_hash=content_hash(text, fields.get("input", ""), turns), **fields
    )


@pytest.fixture
def dataset():
    ds = DatasetFactory(name="mixed", license="Apache-2.0", source="tests")
    _instruction(ds, "Add the numbers.", input="2 and 3", reference_output="5", gold_label="5", task_category="Math")
    _instruction(ds, "Name a colour.", reference_output="Blue ☁ — like the sky", task_category="Others")
    _instruction(ds, "Write a haiku about rain.", reference_output="Soft rain on the roof", task_category="Writing")
    _instruction(ds, "No answer recorded yet.", task_category="Others")
    turns = [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Again?"}]
    turns.append({"role": "assistant", "content": "Hello again."})
    _instruction(ds, "Greet me.", reference_output="Hello!", metadata={"system": "Be terse.", "turns": turns})
    ds.size = 5
    ds.save()
    return ds


def _rows(dataset, fields=("text", "input", "reference_output", "gold_label", "task_category")):
    return sorted(Instruction.objects.filter(dataset=dataset).values_list(*fields))


def _chat_rows(dataset):
    rows = Instruction.objects.filter(dataset=dataset).exclude(reference_output="").order_by("text")
    return sorted(
        (task_text(i.text, i.input), i.reference_output, i.metadata.get("system", ""), str(i.metadata.get("turns")))
        for i in rows
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_round_trips_through_the_importer(tmp_path, dataset, fmt):
    out = tmp_path / f"export-{fmt}"
    manifest = export_write(source=export_source(dataset=dataset.name), fmt=fmt, out=out)
    report = dataset_import_file(path=out, dataset_name=f"back-{fmt}", fmt=fmt)
    back = Dataset.objects.get(name=f"back-{fmt}")
    if fmt in ("alpaca", "parquet"):
        assert report.imported == 5
        assert _rows(back) == _rows(dataset)
    else:  # chat formats carry the prompt as one message and need an answer
        assert report.imported == 4 and manifest["files"][0]["skipped"] == {"no answer": 1}
        assert _chat_rows(back) == _chat_rows(dataset)
        greet = Instruction.objects.get(dataset=back, text="Greet me.")
        assert greet.content_hash == Instruction.objects.get(dataset=dataset, text="Greet me.").content_hash
    if fmt == "sharegpt":
        assert _rows(back, ("text", "task_category"))[0] == ("Add the numbers.\n\n2 and 3", "Math")
    if fmt == "openai":
        assert check_openai_jsonl(out) == (4, [])


def test_the_manifest_hashes_every_file_and_counts(tmp_path, dataset):
    out = tmp_path / "train.jsonl"
    manifest = export_write(source=export_source(dataset=dataset, options={"provenance": True}), fmt="openai", out=out)
    on_disk = json.loads((tmp_path / "train.jsonl.manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    names = {f["name"] for f in manifest["files"]}
    assert names == {"train.jsonl", "train.meta.jsonl", "train.jsonl.README.md"}
    for f in manifest["files"]:
        assert f["sha256"] == hashlib.sha256((tmp_path / f["name"]).read_bytes()).hexdigest(), f["name"]
    side = [orjson.loads(line) for line in (tmp_path / "train.meta.jsonl").read_bytes().splitlines()]
    assert len(side) == 4 and side[0]["provenance"]["dataset"] == "mixed"
    assert manifest["counts"]["records"] == 5 and manifest["counts"]["by_category"]["Others"] == 2
    assert manifest["licences"] == [{"dataset": "mixed", "license": "Apache-2.0", "records": 5, "restrictions": []}]
    assert manifest["warnings"] == [] and manifest["review"] == {
        "reviewed": 0,
        "total": 5,
        "coverage": 0.0,
        "decisions": {},
        "automatic": 0,
    }
    card = (tmp_path / "train.jsonl.README.md").read_text()
    assert "# dataset mixed" in card and "Apache-2.0" in card


def test_filters_select_a_category_an_origin_or_ids(tmp_path, dataset):
    out = tmp_path / "math.json"
    export_write(source=export_source(dataset=dataset, category="Math"), fmt="alpaca", out=out)
    assert [r["instruction"] for r in orjson.loads(out.read_bytes())] == ["Add the numbers."]
    ids = list(Instruction.objects.filter(dataset=dataset, task_category="Others").values_list("pk", flat=True))
    export_write(source=export_source(dataset=dataset, ids=ids), fmt="alpaca", out=out)
    assert len(orjson.loads(out.read_bytes())) == 2
    export_write(source=export_source(dataset=dataset, origin="generated"), fmt="alpaca", out=out)
    assert orjson.loads(out.read_bytes()) == []


def test_a_non_commercial_dataset_and_a_restrictive_teacher_warn(tmp_path):
    from apps.experiments.models import Experiment

    endpoint = LLMEndpoint.objects.create(name="gpt", base_url="https://api.openai.com/v1", model="gpt-4o")
    assert endpoint_terms(endpoint)["restricts_training"] and endpoint_terms(endpoint)["source"] == "known provider"
    seeds = DatasetFactory(name="alpaca-gpt4", license="CC BY-NC 4.0 (data)")
    experiment = Experiment.objects.create(name="lion-x", recipe="lion", dataset=seeds, teacher_endpoint=endpoint)
    experiment.experiment_datasets.create(dataset=seeds, role="seed")
    owned = DatasetFactory(name="lion-x · generated", owner_experiment=experiment)
    _instruction(seeds, "Describe a cat.", reference_output="A small furry animal.")
    _instruction(owned, "Describe a dog.", reference_output="A loyal animal.", origin="generated")

    manifest = export_write(source=export_source(dataset=seeds), fmt="alpaca", out=tmp_path / "a.json")
    [warning] = manifest["warnings"]
    assert "'alpaca-gpt4'" in warning and "non-commercial" in warning
    assert manifest["licences"][0]["restrictions"] == ["non-commercial"]

    manifest = export_write(source=export_source(dataset=owned), fmt="alpaca", out=tmp_path / "b.json")
    assert [t["role"] for t in manifest["terms"]] == ["teacher"]
    assert any("generated from 'alpaca-gpt4'" in w and "non-commercial" in w for w in manifest["warnings"])
    assert any("teacher 'gpt'" in w and "compete" in w for w in manifest["warnings"])
    assert manifest["licences"][0]["derived_from"] == [{"dataset": "alpaca-gpt4", "license": "CC BY-NC 4.0 (data)"}]

    # Recorded terms win over what we know of the provider.
    endpoint.terms_of_use, endpoint.terms_restrict_training = "Enterprise agreement allows training.", False
    endpoint.save()
    manifest = export_write(source=export_source(dataset=owned), fmt="alpaca", out=tmp_path / "c.json")
    assert not any("teacher" in w for w in manifest["warnings"])
    assert manifest["terms"][0]["terms"] == "Enterprise agreement allows training."

    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("export_dataset", "alpaca-gpt4", "--format", "openai", "--out", str(tmp_path / "d.jsonl"),
                 stdout=stdout, stderr=stderr)  # fmt: skip
    assert "warning: Dataset 'alpaca-gpt4'" in stderr.getvalue() and "non-commercial" in stderr.getvalue()
    assert "1 records exported" in stdout.getvalue() and "licences: alpaca-gpt4: CC BY-NC 4.0" in stdout.getvalue()


def test_the_bundle_holds_every_format_the_manifest_and_the_card(tmp_path, dataset):
    out = tmp_path / "bundle.zip"
    manifest = export_write(source=export_source(dataset=dataset), fmt="bundle", out=out)
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        assert names == {"README.md", "manifest.json", "alpaca.json", "sharegpt.json", "openai.jsonl", "data.parquet"}
        inside = json.loads(archive.read("manifest.json"))
        for f in inside["files"]:
            assert hashlib.sha256(archive.read(f["name"])).hexdigest() == f["sha256"], f["name"]
        parquet = tmp_path / "x.parquet"
        parquet.write_bytes(archive.read("data.parquet"))
    assert pq.read_table(parquet).num_rows == 5
    assert inside["files"] == json.loads(json.dumps(manifest["files"])) and "artifact" not in inside
    assert not (tmp_path / "bundle.zip.parts").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--format", "openai"], "No dataset named 'nope'"),
        (["mixed", "--format", "openai", "--round", "lion"], "--round takes <experiment>:<index>"),
        (["mixed", "--format", "openai", "--round", "ghost:1"], "No experiment named 'ghost'"),
        (["mixed", "--format", "openai", "--origin", "copied"], "Unknown origin 'copied'"),
        (["mixed", "--format", "openai", "--ids", "1,x"], "--ids takes comma-separated whole numbers"),
        (["mixed", "--format", "openai", "--ids", "999999"], "has no instruction with id 999999"),
    ],
)
def test_the_command_refuses_bad_input_with_the_reason(tmp_path, dataset, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("export_dataset", *args, "--out", str(tmp_path / "x.jsonl"))
    assert not (tmp_path / "x.jsonl").exists()


def test_the_command_refuses_an_unwritable_path(tmp_path, dataset):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CommandError, match=r"Cannot write .*file/sub/x.jsonl"):
        call_command("export_dataset", "mixed", "--format", "openai", "--out", str(blocker / "sub" / "x.jsonl"))
    with pytest.raises(CommandError, match="is a folder"):
        call_command("export_dataset", "mixed", "--format", "openai", "--out", str(tmp_path))


def test_a_job_runs_and_its_files_download_for_viewers_only(client_for, dataset, settings):
    viewer = client_for(Role.VIEWER)
    response = viewer.post(reverse("experiments:exports"), {"dataset": dataset.pk, "format": "parquet"})
    job = ExportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("experiments:export-job", args=[job.pk])
    assert (job.status, job.total, job.requested_by) == ("queued", 5, viewer.user)
    polled = viewer.get(reverse("experiments:export-job", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert polled.status_code == 200 and b"Waiting for a worker" in polled.content

    job = export_run(job_id=job.pk)
    assert job.status == "succeeded" and job.done == 5
    assert export_run(job_id=job.pk) is None  # a second delivery finds it done
    polled = viewer.get(reverse("experiments:export-job", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert polled.status_code == 286
    assert {f["name"] for f in job.files} == {"data.parquet", "data.parquet.README.md", "data.parquet.manifest.json"}
    url = reverse("experiments:export-download", args=[job.pk, "data.parquet"])
    body = b"".join(viewer.get(url).streaming_content)
    assert hashlib.sha256(body).hexdigest() == job.manifest["files"][0]["sha256"]
    assert viewer.get(f"/experiments/exports/{job.pk}/files/..%2F..%2Fsettings.py").status_code == 404
    assert viewer.get(reverse("experiments:export-download", args=[job.pk, "nothing.txt"])).status_code == 404
    page = viewer.get(reverse("experiments:exports"))
    assert page.status_code == 200 and b"dataset mixed" in page.content
    assert viewer.get(reverse("experiments:exports"), HTTP_HX_REQUEST="true").status_code == 286

    nobody = client_for(None)
    assert nobody.get(url).status_code == 403
    assert nobody.post(reverse("experiments:exports"), {"dataset": dataset.pk, "format": "openai"}).status_code == 403
    assert ExportJob.objects.count() == 1


def test_the_page_shows_warnings_and_form_errors(client_for, tmp_path):
    restricted = DatasetFactory(name="nc", license="CC BY-NC-SA 4.0")
    _instruction(restricted, "Hello?", reference_output="Hi.")
    viewer = client_for(Role.VIEWER)
    viewer.post(reverse("experiments:exports"), {"dataset": restricted.pk, "format": "alpaca"})
    job = export_run(job_id=ExportJob.objects.get().pk)
    page = viewer.get(reverse("experiments:export-job", args=[job.pk])).content.decode()
    assert "Restrictions on use" in page and "non-commercial" in page and "share-alike" in page
    bad = viewer.post(reverse("experiments:exports"), {"format": "alpaca"})
    assert bad.status_code == 200 and b"Choose either a dataset or a round." in bad.content
    bad = viewer.post(reverse("experiments:exports"), {"dataset": restricted.pk, "format": "alpaca", "ids": "7, 8"})
    assert b"has no instruction with id 7" in bad.content
    assert ExportJob.objects.count() == 1


def test_export_start_checks_the_role_and_its_input(dataset):
    with pytest.raises(RoleRequired):
        export_start(by=user_with_role(None), fmt="openai", dataset=dataset.name)
    viewer = user_with_role(Role.VIEWER)
    with pytest.raises(ExportError, match="Unknown format 'xml'"):
        export_start(by=viewer, fmt="xml", dataset=dataset.name)
    with pytest.raises(ExportError, match="both the experiment and the round index"):
        export_start(by=viewer, fmt="openai", round_index=1)
    assert ExportJob.objects.count() == 0


def test_a_job_whose_dataset_went_fails_with_the_reason(dataset):
    job = export_start(by=user_with_role(Role.VIEWER), fmt="alpaca", dataset=dataset.name)
    Dataset.objects.filter(pk=dataset.pk).delete()
    job = export_run(job_id=job.pk)
    assert job.status == "failed" and "no longer exists" in job.error
