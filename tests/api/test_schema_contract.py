"""The OpenAPI schema matches the implementation: schemathesis reads /api/schema/ from a running server
(pytest-django's live server, real sockets) with a viewer's token and sends generated requests to every
GET operation and a few POSTs a viewer may try (starting an export; estimating and claiming, which a
viewer is refused). Every answer must be a documented status code with the documented content type and
body, and none a server error.

Bounded: a few examples per operation (CONTRACT_EXAMPLES, default 4), derandomised so a run repeats, once
with the world's real ids in the path (the 200 answers) and once with generated ones (the 404s)."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.world import build_world
from tests.llm_server.server import ServerThread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "4"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
SAFE_POSTS = {"/api/v1/exports/", "/api/v1/experiments/estimate/", "/api/v1/reviews/claim/"}
# Which of the world's ids a path's {id} takes: the longest prefix that matches.
ID_OF = {
    "/api/v1/datasets/": "dataset",
    "/api/v1/instructions/": "instruction",
    "/api/v1/imports/": "import",
    "/api/v1/llm/endpoints/": "endpoint",
    "/api/v1/experiments/": "experiment",
    "/api/v1/rounds/": "round",
    "/api/v1/stages/": "stage",
    "/api/v1/evaluations/": "evaluation",
    "/api/v1/responses/": "response",
    "/api/v1/judgments/": "judgment",
    "/api/v1/reviews/tasks/": "task",
    "/api/v1/reviews/verdicts/": "verdict",
    "/api/v1/training/jobs/": "job",
    "/api/v1/artifacts/": "adapter",
    "/api/v1/exports/": "export",
}


def _real_path_parameters(operation, ids: dict) -> dict:
    path = operation.path
    params = {}
    if "{id}" in path:
        prefix = max((p for p in ID_OF if path.startswith(p)), key=len)
        params["id"] = ids[ID_OF[prefix]]
    if "{name}" in path:
        params["name"] = ids["export_file"]
    if "{template_id}" in path:
        params.update(template_id="judge_pairwise", version=1)
    return params


def _exercise(operation, strategy, auth, base_url, failures):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        case.call_and_validate(base_url=base_url, headers=auth, checks=CHECKS)

    try:
        run()
    except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis's failures: collected, reported together
        failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:3000])


def test_every_answer_matches_the_schema(live_server, settings, tmp_path):
    settings.RETORT_TRAINING_ROOT = tmp_path / "training"
    settings.MEDIA_ROOT = tmp_path / "media"
    with ServerThread() as server:
        world = build_world(server, tmp_path)
    auth = {"Authorization": f"Token {world.tokens['viewer']}"}
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json", headers=auth, timeout=30)

    failures, tried = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        method = operation.method.upper()
        if method != "GET" and not (method == "POST" and operation.path in SAFE_POSTS):
            continue
        tried.append(f"{method} {operation.path}")
        real = _real_path_parameters(operation, world.ids)
        _exercise(operation, operation.as_strategy(path_parameters=real), auth, live_server.url, failures)
        if real:
            _exercise(operation, operation.as_strategy(), auth, live_server.url, failures)
    assert len(tried) > 40, tried
    assert failures == [], "\n\n".join(failures)
