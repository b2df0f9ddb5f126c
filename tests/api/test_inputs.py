"""Bad input gets a clear error and changes nothing: malformed JSON is a 400 saying so, a wrong type a
400 naming the field or query parameter, an unknown id a 404 naming the row."""

import pytest

from tests.api.test_roles import _state

pytestmark = pytest.mark.django_db

V1 = "/api/v1"

MALFORMED = [
    f"{V1}/experiments/",
    f"{V1}/experiments/estimate/",
    f"{V1}/experiments/{{draft}}/start/",
    f"{V1}/experiments/{{experiment}}/pause/",
    f"{V1}/reviews/claim/",
    f"{V1}/reviews/tasks/{{task}}/verdicts/",
    f"{V1}/exports/",
    f"{V1}/llm/endpoints/",
]


@pytest.mark.parametrize("path", MALFORMED)
def test_malformed_json_is_a_400_saying_so(world, path):
    before = _state()
    response = world.client("operator").generic(
        "POST", path.format(**world.ids), b'{"config": {"name": "x",', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    assert _state() == before


# (method, path, body or query, the field the error names)
WRONG_TYPES = [
    ("GET", f"{V1}/instructions/", {"dataset": "seven"}, "dataset"),
    ("GET", f"{V1}/instructions/", {"origin": "stolen"}, "origin"),
    ("GET", f"{V1}/instructions/", {"page_size": "lots"}, "page_size"),
    ("GET", f"{V1}/instructions/", {"page_size": "0"}, "page_size"),
    ("GET", f"{V1}/instructions/", {"page_size": "501"}, "page_size"),
    ("GET", f"{V1}/judgments/", {"contested": "perhaps"}, "contested"),
    ("GET", f"{V1}/experiments/", {"status": "sleeping"}, "status"),
    ("GET", f"{V1}/llm/calls/", {"experiment": "1; drop table"}, "experiment"),
    ("GET", f"{V1}/training/jobs/{{job}}/metrics/", {"after_step": "-1"}, "after_step"),
    ("GET", f"{V1}/reviews/tasks/", {"kind": "gossip"}, "kind"),
    ("POST", f"{V1}/experiments/", {"config": 12}, "config"),
    ("POST", f"{V1}/experiments/", {"config": "  "}, "config"),
    ("POST", f"{V1}/experiments/", {}, "config"),
    ("POST", f"{V1}/experiments/", {"config": {"name": "x"}, "start": "soon"}, "start"),
    ("POST", f"{V1}/experiments/{{draft}}/start/", {"auto_approve": "maybe"}, "auto_approve"),
    ("POST", f"{V1}/experiments/{{experiment}}/pause/", {"reason": ["a", "list"]}, "reason"),
    ("POST", f"{V1}/reviews/claim/", {"kind": "gossip"}, "kind"),
    ("POST", f"{V1}/reviews/claim/", {"kind": "verdict", "lease_s": "long"}, "lease_s"),
    ("POST", f"{V1}/reviews/tasks/{{task}}/verdicts/", {"decision": 3}, "decision"),
    ("POST", f"{V1}/reviews/tasks/{{task}}/verdicts/", {"decision": "accept", "note": {"a": 1}}, "note"),
    ("POST", f"{V1}/exports/", {"dataset": "x"}, "format"),
    ("POST", f"{V1}/exports/", {"format": "csv", "dataset": "x"}, "format"),
    ("POST", f"{V1}/exports/", {"format": "openai", "dataset": "x", "ids": ["one"]}, "ids"),
    ("POST", f"{V1}/exports/", {"format": "openai", "experiment": "x", "round": "first"}, "round"),
    ("POST", f"{V1}/llm/endpoints/", {"name": "e", "model": "m", "max_concurrency": "many"}, "max_concurrency"),
]


@pytest.mark.parametrize(("method", "path", "data", "field"), WRONG_TYPES, ids=[f"{c[1]}:{c[3]}" for c in WRONG_TYPES])
def test_a_wrong_type_is_a_400_naming_the_field(world, method, path, data, field):
    before = _state()
    api = world.client("operator")
    url = path.format(**world.ids)
    response = api.get(url, data) if method == "GET" else api.post(url, data, format="json")
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body.get(field), body
    assert _state() == before


def test_the_services_own_refusals_name_the_field(world):
    api = world.client("viewer")
    before = _state()
    unknown = api.post(f"{V1}/exports/", {"format": "openai", "dataset": "no-such-set"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json() == {"detail": "No dataset named 'no-such-set'.", "field": "dataset"}
    both = api.post(f"{V1}/exports/", {"format": "openai", "experiment": "x"}, format="json")
    assert both.status_code == 400 and both.json()["field"] == "round"
    assert _state() == before


UNKNOWN = [
    ("GET", f"{V1}/datasets/999999/", "dataset"),
    ("GET", f"{V1}/datasets/999999/instructions/", "dataset"),
    ("GET", f"{V1}/instructions/999999/", "instruction"),
    ("GET", f"{V1}/imports/999999/", "import"),
    ("GET", f"{V1}/experiments/999999/", "experiment"),
    ("GET", f"{V1}/rounds/999999/", "round"),
    ("GET", f"{V1}/stages/999999/", "stage run"),
    ("GET", f"{V1}/evaluations/999999/", "evaluation"),
    ("GET", f"{V1}/responses/999999/", "response"),
    ("GET", f"{V1}/judgments/999999/", "judgment"),
    ("GET", f"{V1}/reviews/tasks/999999/", "review task"),
    ("GET", f"{V1}/reviews/verdicts/999999/", "review verdict"),
    ("GET", f"{V1}/training/jobs/999999/", "training job"),
    ("GET", f"{V1}/training/jobs/999999/metrics/", "training job"),
    ("GET", f"{V1}/artifacts/999999/", "artifact"),
    ("GET", f"{V1}/artifacts/999999/download/", "artifact"),
    ("GET", f"{V1}/exports/999999/", "export"),
    ("GET", f"{V1}/exports/999999/files/openai.jsonl/", "export"),
    ("GET", f"{V1}/llm/endpoints/999999/", "endpoint"),
    ("POST", f"{V1}/llm/endpoints/999999/test/", "endpoint"),
    ("POST", f"{V1}/experiments/999999/start/", "experiment"),
    ("POST", f"{V1}/experiments/999999/pause/", "experiment"),
    ("POST", f"{V1}/experiments/999999/resume/", "experiment"),
    ("POST", f"{V1}/experiments/999999/cancel/", "experiment"),
    ("POST", f"{V1}/experiments/999999/approve-and-train/", "experiment"),
    ("POST", f"{V1}/reviews/tasks/999999/verdicts/", "review task"),
    ("POST", f"{V1}/reviews/tasks/999999/release/", "review task"),
    ("POST", f"{V1}/reviews/tasks/999999/resolve/", "review task"),
    ("POST", f"{V1}/training/jobs/999999/cancel/", "training job"),
    ("POST", f"{V1}/artifacts/999999/merge/", "artifact"),
]


@pytest.mark.parametrize(("method", "path", "label"), UNKNOWN, ids=[f"{c[0]} {c[1]}" for c in UNKNOWN])
def test_an_unknown_id_is_a_404_naming_the_row(world, method, path, label):
    before = _state()
    api = world.client("operator")
    response = api.get(path) if method == "GET" else api.post(path, {"decision": "accept"}, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": f"There is no {label} #999999."}
    assert _state() == before


def test_a_cursor_that_does_not_decode_is_a_404(world):
    response = world.client("viewer").get(f"{V1}/instructions/", {"cursor": "not-a-cursor"})
    assert response.status_code == 404 and response.json() == {"detail": "Invalid cursor"}
