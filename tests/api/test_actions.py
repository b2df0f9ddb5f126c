"""What the API's actions do, through the same services as the pages: experiments from a config (JSON or
YAML), estimates, pause/resume/cancel, approve-and-train once, the review queue (claim, vote, release,
resolve), cancelling training, merging an adapter, exports and downloads."""

import hashlib
import io
import json
import zipfile

import pytest
import yaml

from apps.experiments.exports.services import export_start
from apps.experiments.models import Evaluation, EvaluationCategory, Experiment
from apps.experiments.services import experiment_approve_and_train
from apps.llm.models import LLMCall
from apps.reviews.models import ReviewAssignment, ReviewTask, ReviewVerdict
from apps.training.models import Artifact, MergeJob, TrainingJob
from tests.apps.experiments.conftest import lion_config

pytestmark = pytest.mark.django_db


def _config(world, name="api-new", **overrides):
    dataset = type("D", (), {"name": world.dataset_name})
    return lion_config(world.server, dataset, name=name, params={"rounds": 1}, **overrides)


def test_an_experiment_is_created_once_from_a_json_config(world):
    api = world.client("operator")
    created = api.post("/api/v1/experiments/", {"config": _config(world), "start": True}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["name"] == "api-new" and body["status"] == "running" and body["recipe"] == "lion"
    assert created["Location"] == f"/api/v1/experiments/{body['id']}/"
    experiment = Experiment.objects.get(pk=body["id"])
    assert experiment.config_hash == body["config_hash"] and experiment.created_by == world.users["operator"]
    count = Experiment.objects.count()
    again = api.post("/api/v1/experiments/", {"config": _config(world)}, format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert Experiment.objects.count() == count


def test_an_experiment_is_created_from_yaml_text_in_either_form(world):
    api = world.client("operator")
    text = yaml.safe_dump(_config(world, name="api-yaml"))
    sent_raw = api.generic("POST", "/api/v1/experiments/", text.encode(), content_type="application/yaml")
    assert sent_raw.status_code == 201, sent_raw.json()
    assert sent_raw.json()["name"] == "api-yaml" and sent_raw.json()["status"] == "draft"
    as_text = api.post(
        "/api/v1/experiments/", {"config": yaml.safe_dump(_config(world, name="api-yaml2"))}, format="json"
    )
    assert as_text.status_code == 201 and as_text.json()["name"] == "api-yaml2"


def test_a_config_with_problems_names_each_key_path_and_creates_nothing(world):
    api = world.client("operator")
    config = _config(world, name="api-bad")
    config["params"]["tau"] = "high"
    config["paramz"] = {}
    count, calls = Experiment.objects.count(), LLMCall.objects.count()
    for url in ("/api/v1/experiments/", "/api/v1/experiments/estimate/"):
        response = api.post(url, {"config": config}, format="json")
        assert response.status_code == 400
        problems = {p["path"]: p["problem"] for p in response.json()["problems"]}
        assert "params.tau" in problems and "paramz" in problems, problems
        assert "key path" in response.json()["detail"]
    text = "name: api-bad\nrecipe: lion\ndataset: [unclosed\n"
    response = api.generic("POST", "/api/v1/experiments/", text.encode(), content_type="text/yaml")
    assert response.status_code == 400 and response.json()["problems"]
    assert (Experiment.objects.count(), LLMCall.objects.count()) == (count, calls)


def test_a_clashing_name_is_a_400_and_changes_nothing(world):
    api = world.client("operator")
    name = Experiment.objects.get(pk=world.ids["experiment"]).name
    response = api.post("/api/v1/experiments/", {"config": _config(world, name=name, seed=99)}, format="json")
    assert response.status_code == 400 and "already exists with another config" in response.json()["detail"]


def test_an_estimate_counts_round_one_and_creates_nothing(world):
    api = world.client("operator")
    count, calls = Experiment.objects.count(), LLMCall.objects.count()
    response = api.post("/api/v1/experiments/estimate/", {"config": _config(world, name="api-est")}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["name"] == "api-est" and body["recipe"] == "lion" and len(body["config_hash"]) == 64
    assert body["stages"] and body["totals"]["calls"] == sum(s["calls"] for s in body["stages"]) > 0
    # The seeds' teacher answers are in the ledger already (the world's experiments asked for them).
    assert body["totals"]["in_ledger"] > 0
    assert (Experiment.objects.count(), LLMCall.objects.count()) == (count, calls)


def test_pause_resume_and_cancel_move_the_experiment_and_refuse_what_the_engine_refuses(world):
    api = world.client("operator")
    pk = world.ids["experiment"]
    paused = api.post(f"/api/v1/experiments/{pk}/pause/", {"reason": "checking the judge"}, format="json").json()
    assert paused["status"] == "paused" and paused["status_reason"] == "checking the judge"
    assert paused["resume_status"] == "waiting_review"
    assert api.post(f"/api/v1/experiments/{pk}/resume/").json()["status"] == "waiting_review"
    again = api.post(f"/api/v1/experiments/{pk}/resume/")
    assert again.status_code == 409 and "not paused: nothing to resume" in again.json()["detail"]
    cancelled = api.post(f"/api/v1/experiments/{pk}/cancel/", {}, format="json").json()
    assert cancelled["status"] == "cancelled"
    refused = api.post(f"/api/v1/experiments/{pk}/pause/", {}, format="json")
    assert refused.status_code == 409 and "ended experiment" in refused.json()["detail"]


def test_start_runs_a_draft_with_auto_approve(world):
    api = world.client("operator")
    pk = world.ids["draft"]
    body = api.post(f"/api/v1/experiments/{pk}/start/", {"auto_approve": True}, format="json").json()
    assert body["status"] == "running" and body["auto_approve"] is True


def test_approve_and_train_queues_one_job_however_often_it_is_pressed(world):
    api = world.client("operator")
    pk = world.ids["waiting"]
    first = api.post(f"/api/v1/experiments/{pk}/approve-and-train/")
    assert first.status_code == 202, first.json()
    second = api.post(f"/api/v1/experiments/{pk}/approve-and-train/")
    assert second.status_code == 202 and second.json()["id"] == first.json()["id"]
    assert TrainingJob.objects.filter(round__experiment_id=pk).count() == 1
    job = first.json()
    assert job["status"] == "queued" and job["snapshot"] and job["spec"]["base_model"] == "builtin:tiny"
    assert Experiment.objects.get(pk=pk).status == "training"
    # Nothing waits for approval in a draft.
    refused = api.post(f"/api/v1/experiments/{world.ids['draft']}/approve-and-train/")
    assert refused.status_code in (400, 409) and refused.json()["detail"]


def test_the_review_queue_claim_vote_and_release(world):
    alice, bob = world.client("reviewer"), world.client("operator")  # an operator reviews too
    claimed = alice.post("/api/v1/reviews/claim/", {"kind": "verdict"}, format="json")
    assert claimed.status_code == 200
    task = claimed.json()
    assert task["status"] == "claimed" and task["kind"] == "verdict"
    assert task["allowed_decisions"] == ["accept", "flip", "invalid"]
    assert task["subject"]["type"] == "judging.judgment" and task["subject"]["data"]["verdict"] in ("hard", "easy")
    assert alice.post("/api/v1/reviews/claim/", {"kind": "verdict"}, format="json").json()["id"] == task["id"]
    assert bob.post("/api/v1/reviews/claim/", {"kind": "verdict"}, format="json").json()["id"] != task["id"]
    released = alice.post(f"/api/v1/reviews/tasks/{task['id']}/release/").json()
    assert released == {"released": True}
    assert alice.post(f"/api/v1/reviews/tasks/{task['id']}/release/").json() == {"released": False}
    assert ReviewAssignment.objects.get(task_id=task["id"], reviewer=world.users["reviewer"]).status == "released"

    vote = alice.post(f"/api/v1/reviews/tasks/{task['id']}/verdicts/", {"decision": "flip", "note": "n"}, format="json")
    assert vote.status_code == 201
    done = vote.json()
    assert done["status"] == "done" and done["decision"] == "flip"
    assert [(v["reviewer_name"], v["decision"]) for v in done["verdicts"]] == [
        (world.users["reviewer"].username, "flip")
    ]
    late = alice.post(f"/api/v1/reviews/tasks/{task['id']}/verdicts/", {"decision": "accept"}, format="json")
    assert late.status_code == 400 and "already decided" in late.json()["detail"]
    assert ReviewVerdict.objects.filter(task_id=task["id"]).count() == 1


def test_a_decision_the_queue_does_not_take_is_refused_and_an_empty_queue_is_204(world):
    alice = world.client("reviewer")
    pk = world.ids["task"]
    edit = alice.post(f"/api/v1/reviews/tasks/{pk}/verdicts/", {"decision": "edit", "edited_text": "x"}, format="json")
    assert edit.status_code == 400 and "accept, flip, invalid" in edit.json()["detail"]
    assert ReviewVerdict.objects.filter(task_id=pk).count() == 0
    assert alice.post("/api/v1/reviews/claim/", {"kind": "rationale"}, format="json").status_code == 204


def test_an_operator_resolves_a_conflict(world):
    pk = world.ids["conflict_task"]
    assert ReviewTask.objects.get(pk=pk).status == "conflict"
    body = world.client("operator").post(f"/api/v1/reviews/tasks/{pk}/resolve/", {"decision": "flip"}, format="json")
    assert body.status_code == 200 and body.json()["status"] == "done" and body.json()["decision"] == "flip"
    assert body.json()["resolved_by"] == world.users["operator"].pk
    assert len(body.json()["verdicts"]) == 2


def test_cancel_a_queued_training_job(world):
    api = world.client("operator")
    job = api.post(f"/api/v1/experiments/{world.ids['waiting']}/approve-and-train/").json()
    cancelled = api.post(f"/api/v1/training/jobs/{job['id']}/cancel/").json()
    assert cancelled["status"] == "cancelled" and cancelled["cancel_requested"] is True
    finished = api.post(f"/api/v1/training/jobs/{world.ids['job']}/cancel/").json()
    assert finished["status"] == "succeeded" and finished["cancel_requested"] is False


def test_merging_an_adapter_queues_one_job_and_weights_are_refused(world):
    api = world.client("operator")
    first = api.post(f"/api/v1/artifacts/{world.ids['adapter']}/merge/")
    second = api.post(f"/api/v1/artifacts/{world.ids['adapter']}/merge/")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"] and first.json()["adapter"] == world.ids["adapter"]
    assert MergeJob.objects.count() == 1
    refused = api.post(f"/api/v1/artifacts/{world.ids['weights']}/merge/")
    assert refused.status_code == 400 and "only a LoRA adapter is merged" in refused.json()["detail"]
    assert MergeJob.objects.count() == 1
    listed = api.get("/api/v1/artifacts/?kind=adapter").json()["results"]
    assert [a["id"] for a in listed] == [world.ids["adapter"]] and listed[0]["merge_refusal"] is None


def test_an_artifact_downloads_as_a_zip_of_its_files(world):
    response = world.client("viewer").get(f"/api/v1/artifacts/{world.ids['adapter']}/download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    artifact = Artifact.objects.get(pk=world.ids["adapter"])
    for entry in artifact.metadata["files"]:
        assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
    assert "README.md" in archive.namelist()
    missing = world.client("viewer").get(f"/api/v1/artifacts/{world.ids['weights']}/download/")
    assert missing.status_code == 404 and "not on this server's storage" in missing.json()["detail"]


def test_an_export_starts_and_its_files_download_with_their_hashes(world):
    api = world.client("viewer")
    started = api.post(
        "/api/v1/exports/", {"format": "sharegpt", "dataset": world.dataset_name, "provenance": True}, format="json"
    )
    assert started.status_code == 202, started.json()
    job = started.json()
    assert job["status"] == "queued" and job["format"] == "sharegpt" and job["total"] == 6
    assert job["options"]["provenance"] is True and job["requested_by"] == world.users["viewer"].pk

    done = api.get(f"/api/v1/exports/{world.ids['export']}/").json()
    assert done["status"] == "succeeded" and done["files"]
    for entry in done["files"]:
        response = api.get(f"/api/v1/exports/{done['id']}/files/{entry['name']}/")
        assert response.status_code == 200
        data = b"".join(response.streaming_content)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
    lines = [json.loads(line) for line in data.decode().splitlines()] if entry["name"].endswith(".jsonl") else []
    assert all("messages" in line for line in lines)
    missing = api.get(f"/api/v1/exports/{done['id']}/files/secrets.txt/")
    assert missing.status_code == 404 and "has no file 'secrets.txt'" in missing.json()["detail"]


def test_endpoints_never_show_a_key_and_the_key_variable_only_to_operators(world):
    pk = world.ids["endpoint"]
    viewer = world.client("viewer").get(f"/api/v1/llm/endpoints/{pk}/").json()
    operator = world.client("operator").get(f"/api/v1/llm/endpoints/{pk}/").json()
    assert "api_key_env" not in viewer and "api_key_env" in operator
    for body in (viewer, operator):
        assert not [key for key in body if key in ("api_key", "key", "secret")]
    assert all("api_key_env" not in e for e in world.client("viewer").get("/api/v1/llm/endpoints/").json()["results"])


def test_cost_rollups_add_up(world):
    body = world.client("viewer").get("/api/v1/llm/costs/").json()
    assert body["ledger"]["calls"] == LLMCall.objects.count() > 0
    mine = {row["experiment_id"]: row for row in body["experiments"]}
    assert world.ids["experiment"] in mine and mine[world.ids["experiment"]]["calls"] > 0


def test_actions_take_form_fields_as_curl_sends_them(world):
    reviewer, operator = world.client("reviewer"), world.client("operator")
    claimed = reviewer.post("/api/v1/reviews/claim/", {"kind": "verdict", "lease_s": "60"})
    assert claimed.status_code == 200 and claimed.json()["kind"] == "verdict"
    voted = reviewer.post(f"/api/v1/reviews/tasks/{claimed.json()['id']}/verdicts/", {"decision": "accept"})
    assert voted.status_code == 201 and voted.json()["status"] == "done"
    started = operator.post(f"/api/v1/experiments/{world.ids['draft']}/start/", {"auto_approve": "false"})
    assert started.status_code == 200 and started.json()["auto_approve"] is False
    paused = operator.post(f"/api/v1/experiments/{world.ids['draft']}/pause/", {"reason": "checking the judge"})
    assert paused.json()["status_reason"] == "checking the judge"


def _second_evaluation(world):
    first = Evaluation.objects.get(pk=world.ids["evaluation"])
    second = Evaluation.objects.create(experiment=first.experiment, round=first.round, stage="evaluate_again", n=2)
    EvaluationCategory.objects.create(evaluation=second, category="math", n=2)


SECOND_ROW = {
    "/api/v1/evaluations/": _second_evaluation,
    "/api/v1/training/jobs/": lambda w: experiment_approve_and_train(
        experiment_id=w.ids["waiting"], by=w.users["operator"]
    ),
    "/api/v1/exports/": lambda w: export_start(by=w.users["viewer"], fmt="alpaca", dataset=w.dataset_name),
}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reviews/tasks/",
        "/api/v1/reviews/verdicts/",
        "/api/v1/stages/",
        "/api/v1/evaluations/",
        "/api/v1/responses/",
        "/api/v1/judgments/",
        "/api/v1/llm/calls/",
        "/api/v1/training/jobs/",
        "/api/v1/artifacts/",
        "/api/v1/exports/",
        "/api/v1/experiments/",
        "/api/v1/llm/endpoints/",
    ],
)
def test_a_lists_queries_do_not_grow_with_its_page(world, path):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = world.client("operator")
    if path in SECOND_ROW:  # lists the world holds one row of
        SECOND_ROW[path](world)
    counts = []
    for size in (1, 200):
        with CaptureQueriesContext(connection) as captured:
            body = api.get(path, {"page_size": size}).json()
        counts.append(len(captured))
        rows = len(body["results"])
    assert rows > 1, f"{path} lists too few rows to tell"
    assert counts[0] == counts[1] <= 8, counts
