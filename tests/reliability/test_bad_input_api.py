"""Bad input, REST API payloads beyond tests/api/test_inputs.py: bodies nested 10,000 deep, too large,
in the wrong encoding or content type, ids past 2**63 in filters, bodies and paths, cursors that decode
to nonsense, NUL characters and SQL-ish text in filters and fields, absurd endpoint settings.

Each is a 4xx with a JSON body that names what was wrong (never a 500, never Django's HTML page), and
every table is as it was; SQL-ish filter text is matched as text (no rows, tables intact).
"""

import base64
import json

import pytest
from django.conf import settings

from tests.api.conftest import world  # noqa: F401 - the API tests' world: a trained round, users, tokens
from tests.reliability.unchanged import changed_tables, db_fingerprint

pytestmark = pytest.mark.django_db
V1 = "/api/v1"
DEEP = "[" * 10_000 + "]" * 10_000
BIG = 2**63  # one past the largest id
HUGE = 2**70


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# (id, method, path, body, content type, status, the JSON body must hold each of these (key, words))
# fmt: off
BODIES = [
    ("deep-json-experiments", "POST", "experiments/", '{"config": ' + DEEP + "}", "json", 400,
     [("detail", "nested more than 255 levels deep")]),
    ("deep-json-estimate", "POST", "experiments/estimate/", '{"config": ' + DEEP + "}", "json", 400,
     [("detail", "nested more than 255 levels deep")]),
    ("deep-json-exports", "POST", "exports/", '{"format": ' + DEEP + "}", "json", 400,
     [("detail", "nested more than 255 levels deep")]),
    ("deep-json-endpoints", "POST", "llm/endpoints/", '{"name": ' + DEEP + "}", "json", 400,
     [("detail", "nested more than 255 levels deep")]),
    ("deep-json-claim", "POST", "reviews/claim/", '{"kind": ' + DEEP + "}", "json", 400,
     [("detail", "nested more than 255 levels deep")]),
    ("deep-json-verdict", "POST", "reviews/tasks/{task}/verdicts/", '{"note": ' + DEEP + "}", "json", 400,
     [("detail", "nested more than 255 levels deep")]),
    ("deep-yaml-experiments", "POST", "experiments/", "name: " + DEEP, "yaml", 400,
     [("problems", "nested too deeply")]),
    ("deep-config-object-200", "POST", "experiments/", '{"config": {"name": "x", "params": ' + "[" * 200
     + "]" * 200 + "}}", "json", 400, [("problems", "params")]),
    ("deep-config-object-900", "POST", "experiments/", '{"config": {"name": "x", "params": ' + "[" * 900
     + "]" * 900 + "}}", "json", 400, [("detail", "nested more than 255 levels deep")]),
    ("body-over-2.5mb", "POST", "experiments/", '{"config": "' + "x" * (3 << 20) + '"}', "json", 400,
     [("detail", "over the 2,621,440-byte limit")]),
    ("yaml-over-1mb", "POST", "experiments/", "#" * (2 << 20), "yaml", 400, [("config", "at most 1,048,576 bytes")]),
    ("nan-literal", "POST", "experiments/", '{"config": NaN}', "json", 400, [("detail", "JSON parse error")]),
    ("infinity-literal", "POST", "exports/", '{"format": "openai", "round": Infinity}', "json", 400,
     [("detail", "JSON parse error")]),
    ("invalid-utf8-json", "POST", "exports/", b'{"format": "\xff"}', "json", 400, [("detail", "JSON parse error")]),
    ("utf16-json", "POST", "exports/", '{"format": "openai"}'.encode("utf-16"), "json", 400,
     [("detail", "JSON parse error")]),
    ("json-array-body", "POST", "exports/", "[1, 2]", "json", 400, [("non_field_errors", "Expected a dictionary")]),
    ("json-null-body", "POST", "llm/endpoints/", "null", "json", 400, [("non_field_errors", "No data provided")]),
    ("json-string-body", "POST", "reviews/claim/", '"verdict"', "json", 400, [("non_field_errors", "")]),
    ("text-plain", "POST", "experiments/", "name: x", "text/plain", 415, [("detail", 'media type "text/plain"')]),
    ("xml", "POST", "exports/", "<export/>", "application/xml", 415, [("detail", "application/xml")]),
    ("json-to-upload", "POST", "imports/new/", '{"dataset": "x"}', "json", 415, [("detail", "application/json")]),
    ("yaml-to-exports", "POST", "exports/", "format: openai", "yaml", 415, [("detail", "application/yaml")]),
    ("ids-past-2**63", "POST", "exports/", {"format": "openai", "dataset": "x", "ids": [BIG]}, "json", 400,
     [("ids", "less than or equal to 9223372036854775807")]),
    ("round-past-2**63", "POST", "exports/", {"format": "bundle", "experiment": "{experiment}", "round": BIG},
     "json", 400, [("round", "less than or equal to")]),
    ("nul-in-dataset", "POST", "exports/", {"format": "openai", "dataset": "a\x00b"}, "json", 400,
     [("dataset", "Null characters")]),
    ("nested-category", "POST", "exports/", {"format": "openai", "dataset": "x", "category": {"a": [1]}}, "json",
     400, [("category", "Not a valid string")]),
    ("nul-in-config-dataset", "POST", "experiments/", {"config": {"name": "n", "recipe": "lion", "dataset": "a\x00"}},
     "json", 400, [("problems", "NUL character")]),
    ("nul-in-note", "POST", "reviews/tasks/{task}/verdicts/", {"decision": "accept", "note": "a\x00b"}, "json", 400,
     [("note", "Null characters")]),
    ("nul-in-claim-kind", "POST", "reviews/claim/", {"kind": "verdict\x00"}, "json", 400, [("kind", "valid choice")]),
    ("lease-past-2**63", "POST", "reviews/claim/", {"kind": "verdict", "lease_s": BIG}, "json", 400,
     [("lease_s", "less than or equal to")]),
    ("note-2mb", "POST", "reviews/tasks/{task}/verdicts/", {"decision": "accept", "note": "x" * 2_000_000}, "json",
     400, [("note", "no more than 10000 characters")]),
    ("endpoint-concurrency-1e6", "POST", "llm/endpoints/",
     {"name": "wide", "model": "m", "base_url": "http://127.0.0.1:9/v1", "max_concurrency": 10**6}, "json", 400,
     [("detail", "at most 10,000"), ("field", "max_concurrency")]),
    ("endpoint-file-url", "POST", "llm/endpoints/", {"name": "f", "model": "m", "base_url": "file:///etc/passwd"},
     "json", 400, [("base_url", "valid URL")]),
    ("endpoint-javascript-url", "POST", "llm/endpoints/", {"name": "j", "model": "m", "base_url": "javascript:x"},
     "json", 400, [("base_url", "valid URL")]),
    ("endpoint-price-nan", "POST", "llm/endpoints/",
     {"name": "p", "model": "m", "base_url": "http://127.0.0.1:9/v1", "price_input_per_mtok": "NaN"}, "json", 400,
     [("price_input_per_mtok", "valid number")]),
    ("endpoint-name-nul", "POST", "llm/endpoints/", {"name": "e\x00", "model": "m", "base_url": "http://a.b/v1"},
     "json", 400, [("name", "Null characters")]),
    ("upload-empty-file", "POST", "imports/new/", {"dataset": "x", "file": "EMPTY"}, "multipart", 400,
     [("file", "The submitted file is empty")]),
    ("upload-nul-name", "POST", "imports/new/", {"dataset": "x\x00", "file": "SMALL"}, "multipart", 400,
     [("dataset", "Null characters")]),
    ("upload-unknown-format", "POST", "imports/new/", {"dataset": "x", "format": "xlsx", "file": "SMALL"},
     "multipart", 400, [("format", "not a valid choice")]),
]
# fmt: on
# (id, path, query, status, (key, words)): filters, cursors and ids in the query string and the path
# fmt: off
QUERIES = [
    ("dataset-filter-2**63", "instructions/", {"dataset": str(BIG)}, 400, ("dataset", "less than or equal to")),
    ("round-filter-2**70", "instructions/", {"round": str(HUGE)}, 400, ("round", "less than or equal to")),
    ("parent-filter-exponent", "instructions/", {"parent": "1e3"}, 400, ("parent", "valid integer")),
    ("call-experiment-2**63", "llm/calls/", {"experiment": str(BIG)}, 400, ("experiment", "less than or equal")),
    ("call-endpoint-2**70", "llm/calls/", {"endpoint": str(HUGE)}, 400, ("endpoint", "less than or equal")),
    ("judgment-instruction-2**63", "judgments/", {"instruction": str(BIG)}, 400, ("instruction", "less than")),
    ("job-experiment-2**63", "training/jobs/", {"experiment": str(BIG)}, 400, ("experiment", "less than")),
    ("metrics-after-2**63", "training/jobs/{job}/metrics/", {"after_step": str(BIG)}, 400, ("after_step", "less")),
    ("artifact-job-2**63", "artifacts/", {"training_job": str(BIG)}, 400, ("training_job", "less than")),
    ("cursor-position-text", "instructions/", {"cursor": _cursor("p=abc")}, 404, ("detail", "Invalid cursor")),
    ("cursor-position-2**64", "instructions/", {"cursor": _cursor(f"p={2**64}")}, 404, ("detail", "Invalid cursor")),
    ("cursor-negative-position", "experiments/", {"cursor": _cursor("r=0&p=-5")}, 404, ("detail", "Invalid cursor")),
    ("cursor-reverse-text", "instructions/", {"cursor": _cursor("r=yes&p=1")}, 404, ("detail", "Invalid cursor")),
    ("cursor-not-ascii", "instructions/", {"cursor": "é"}, 404, ("detail", "Invalid cursor")),
    ("cursor-offset-huge", "instructions/", {"cursor": _cursor(f"o={HUGE}&p=1")}, 200, ("results", "")),
    ("page-size-2**63", "instructions/", {"page_size": str(BIG)}, 400, ("page_size", "from 1 to 500")),
    ("nul-in-search", "instructions/", {"search": "a\x00b"}, 400, ("search", "Null characters")),
    ("nul-in-name-filter", "datasets/", {"name": "\x00"}, 400, ("name", "Null characters")),
    ("nul-in-status-filter", "llm/calls/", {"status": "ok\x00"}, 400, ("status", "valid choice")),
    ("sql-in-search", "instructions/", {"search": "' OR 1=1 --"}, 200, ("results", "")),
    ("sql-in-name-filter", "experiments/", {"name": "'; DROP TABLE experiments_experiment; --"}, 200, ("results", "")),
    ("sql-in-purpose-filter", "llm/calls/", {"purpose": "x' OR 'a'='a"}, 200, ("results", "")),
    ("like-wildcard-percent", "instructions/", {"search": "%"}, 200, ("results", "")),
    ("like-wildcard-underscore", "datasets/", {"name": "_"}, 200, ("results", "")),
    ("experiment-id-2**63", f"experiments/{BIG}/", {}, 404, ("detail", f"There is no experiment #{BIG}.")),
    ("instruction-id-2**64", f"instructions/{2**64}/", {}, 404, ("detail", f"There is no instruction #{2**64}.")),
    ("dataset-rows-2**63", f"datasets/{BIG}/instructions/", {}, 404, ("detail", f"There is no dataset #{BIG}.")),
    ("export-file-2**63", f"exports/{BIG}/files/openai.jsonl/", {}, 404, ("detail", f"There is no export #{BIG}.")),
]
# fmt: on
# ids in the path of an action (POST), past 2**63
# fmt: off
ACTIONS = [
    ("start-2**63", f"experiments/{BIG}/start/", "experiment"),
    ("approve-2**63", f"experiments/{BIG}/approve-and-train/", "experiment"),
    ("verdict-2**63", f"reviews/tasks/{BIG}/verdicts/", "review task"),
    ("merge-2**63", f"artifacts/{BIG}/merge/", "artifact"),
]
# fmt: on

_TYPES = {"json": "application/json", "yaml": "application/yaml"}


def _files(data: dict) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    content = {"EMPTY": b"", "SMALL": b'{"instruction": "Hi."}\n'}
    return {k: SimpleUploadedFile("s.jsonl", content[v]) if k == "file" else v for k, v in data.items()}


def _holds(body, key: str, words: str) -> None:
    assert key in body, f"{key!r} not in {body!r}"[:500]
    text = body[key] if isinstance(body[key], str) else json.dumps(body[key], ensure_ascii=False)
    assert words in text, f"{words!r} not in {text!r}"[:500]


def test_the_corpus_is_large_and_its_ids_unique():
    ids = [c[0] for c in BODIES + QUERIES + ACTIONS]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", BODIES, ids=[c[0] for c in BODIES])
def test_a_bad_body_is_a_4xx_naming_the_problem_and_changes_nothing(world, case):  # noqa: F811
    _, method, path, body, kind, status, expected = case
    api = world.client("operator")
    url = f"{V1}/{path.format(**world.ids)}"
    before = db_fingerprint()
    if kind == "multipart":
        response = api.post(url, _files(body), format="multipart")
    else:
        if isinstance(body, dict):
            body = json.dumps({k: v.format(**world.ids) if isinstance(v, str) else v for k, v in body.items()})
        response = api.generic(method, url, body, content_type=_TYPES.get(kind, kind))
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    for key, words in expected:
        _holds(response.json(), key, words)
    assert changed_tables(before, db_fingerprint()) == []


@pytest.mark.parametrize("case", QUERIES, ids=[c[0] for c in QUERIES])
def test_a_bad_query_or_id_is_a_4xx_naming_it_and_sql_text_is_only_text(world, case):  # noqa: F811
    _, path, query, status, (key, words) = case
    before = db_fingerprint()
    response = world.client("operator").get(f"{V1}/{path.format(**world.ids)}", query)
    assert response.status_code == status, response.content[:300]
    body = response.json()
    _holds(body, key, words)
    if status == 200:
        assert body["results"] == []  # the text matched nothing (nothing holds it), and matched as text
    assert changed_tables(before, db_fingerprint()) == []


@pytest.mark.parametrize(("case_id", "path", "label"), ACTIONS, ids=[c[0] for c in ACTIONS])
def test_an_action_on_an_id_past_2_63_is_a_404_naming_it(world, case_id, path, label):  # noqa: F811
    before = db_fingerprint()
    response = world.client("operator").post(f"{V1}/{path}", {"decision": "accept"}, format="json")
    assert response.status_code == 404 and response.json() == {"detail": f"There is no {label} #{BIG}."}
    assert changed_tables(before, db_fingerprint()) == []


def test_a_like_wildcard_matches_itself_not_everything(world):  # noqa: F811
    """Searching for % or _ finds only text holding them: the ORM escapes them in the LIKE pattern."""
    api = world.client("viewer")
    everything = api.get(f"{V1}/instructions/", {"page_size": 500}).json()["results"]
    assert everything  # the world has instructions, so a wildcard that matched all would show
    assert not any("%" in row["text"] or "%" in row["input"] for row in everything)
    assert api.get(f"{V1}/instructions/", {"search": "%"}).json()["results"] == []
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 2_621_440  # the figure the oversized-body case quotes
