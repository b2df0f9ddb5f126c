"""Every endpoint and action of the REST API for every role: anonymous requests get 401, a user without
the role the page needs gets 403 and changes nothing, the roles that may get the endpoint's answer. The
table must name every route and method the API serves (test_the_table_covers_every_endpoint)."""

from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import Resolver404, URLResolver, get_resolver, resolve

from apps.datasets.models import ImportJob
from apps.experiments.exports.models import ExportJob
from apps.experiments.models import Experiment
from apps.llm.models import LLMEndpoint
from apps.reviews.models import ReviewAssignment, ReviewTask, ReviewVerdict
from apps.training.models import MergeJob, TrainingJob
from tests.api.world import LEVEL, ROLES
from tests.apps.experiments.conftest import lion_config

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # with {key} for the world's ids
    role: str  # the least role that may
    status: int  # what that role gets
    body: object = None  # a dict, or a callable(world) -> dict
    format: str = "json"

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _config(world):
    dataset = type("D", (), {"name": world.dataset_name})
    return lion_config(world.server, dataset, name="api-table-new", params={"rounds": 1})


def _upload(world):
    return {"file": SimpleUploadedFile("more.jsonl", b'{"instruction": "Name a colour."}\n'), "dataset": "more"}


def _endpoint(world):
    return {"name": "api-table-endpoint", "backend": "openai", "base_url": world.server.url, "model": "teacher-a"}


V1 = "/api/v1"
CASES = [
    Case("GET", f"{V1}/", "viewer", 200),
    Case("GET", "/api/schema/", "viewer", 200),
    Case("GET", "/api/docs/", "viewer", 200),
    # datasets and instructions
    Case("GET", f"{V1}/datasets/", "viewer", 200),
    Case("GET", f"{V1}/datasets/{{dataset}}/", "viewer", 200),
    Case("GET", f"{V1}/datasets/{{dataset}}/instructions/", "viewer", 200),
    Case("GET", f"{V1}/instructions/", "viewer", 200),
    Case("GET", f"{V1}/instructions/{{instruction}}/", "viewer", 200),
    Case("GET", f"{V1}/instructions/{{instruction}}/provenance/", "viewer", 200),
    Case("GET", f"{V1}/imports/", "viewer", 200),
    Case("GET", f"{V1}/imports/{{import}}/", "viewer", 200),
    Case("POST", f"{V1}/imports/new/", "operator", 202, _upload, "multipart"),
    # the gateway
    Case("GET", f"{V1}/llm/endpoints/", "viewer", 200),
    Case("POST", f"{V1}/llm/endpoints/", "operator", 201, _endpoint),
    Case("GET", f"{V1}/llm/endpoints/{{endpoint}}/", "viewer", 200),
    Case("PUT", f"{V1}/llm/endpoints/{{endpoint}}/", "operator", 200, _endpoint),
    Case("PATCH", f"{V1}/llm/endpoints/{{endpoint}}/", "operator", 200, {"max_concurrency": 3}),
    Case("POST", f"{V1}/llm/endpoints/{{endpoint}}/test/", "operator", 200),
    Case("GET", f"{V1}/llm/calls/", "viewer", 200),
    Case("GET", f"{V1}/llm/costs/", "viewer", 200),
    Case("GET", f"{V1}/llm/prompts/", "viewer", 200),
    Case("GET", f"{V1}/llm/prompts/judge_pairwise/v1/", "viewer", 200),
    # experiments and their actions
    Case("GET", f"{V1}/experiments/", "viewer", 200),
    Case("POST", f"{V1}/experiments/", "operator", 201, lambda w: {"config": _config(w)}),
    Case("POST", f"{V1}/experiments/estimate/", "operator", 200, lambda w: {"config": _config(w)}),
    Case("GET", f"{V1}/experiments/{{experiment}}/", "viewer", 200),
    Case("GET", f"{V1}/experiments/{{experiment}}/costs/", "viewer", 200),
    Case("GET", f"{V1}/experiments/{{experiment}}/evaluations/", "viewer", 200),
    Case("POST", f"{V1}/experiments/{{draft}}/start/", "operator", 200, {}),
    Case("POST", f"{V1}/experiments/{{experiment}}/pause/", "operator", 200, {"reason": "lunch"}),
    Case("POST", f"{V1}/experiments/{{paused}}/resume/", "operator", 200),
    Case("POST", f"{V1}/experiments/{{draft}}/cancel/", "operator", 200, {}),
    Case("POST", f"{V1}/experiments/{{waiting}}/approve-and-train/", "operator", 202),
    Case("GET", f"{V1}/rounds/", "viewer", 200),
    Case("GET", f"{V1}/rounds/{{round}}/", "viewer", 200),
    Case("GET", f"{V1}/stages/", "viewer", 200),
    Case("GET", f"{V1}/stages/{{stage}}/", "viewer", 200),
    Case("GET", f"{V1}/evaluations/", "viewer", 200),
    Case("GET", f"{V1}/evaluations/{{evaluation}}/", "viewer", 200),
    # answers and judgments
    Case("GET", f"{V1}/responses/", "viewer", 200),
    Case("GET", f"{V1}/responses/{{response}}/", "viewer", 200),
    Case("GET", f"{V1}/judgments/", "viewer", 200),
    Case("GET", f"{V1}/judgments/{{judgment}}/", "viewer", 200),
    # review queues
    Case("GET", f"{V1}/reviews/tasks/", "viewer", 200),
    Case("GET", f"{V1}/reviews/tasks/{{task}}/", "viewer", 200),
    Case("POST", f"{V1}/reviews/claim/", "reviewer", 200, {"kind": "verdict"}),
    Case("POST", f"{V1}/reviews/tasks/{{task}}/verdicts/", "reviewer", 201, {"decision": "accept"}),
    Case("POST", f"{V1}/reviews/tasks/{{task}}/release/", "reviewer", 200),
    Case("POST", f"{V1}/reviews/tasks/{{conflict_task}}/resolve/", "operator", 200, {"decision": "flip"}),
    Case("GET", f"{V1}/reviews/verdicts/", "viewer", 200),
    Case("GET", f"{V1}/reviews/verdicts/{{verdict}}/", "viewer", 200),
    # training and artifacts
    Case("GET", f"{V1}/training/jobs/", "viewer", 200),
    Case("GET", f"{V1}/training/jobs/{{job}}/", "viewer", 200),
    Case("GET", f"{V1}/training/jobs/{{job}}/metrics/", "viewer", 200),
    Case("POST", f"{V1}/training/jobs/{{job}}/cancel/", "operator", 200),
    Case("GET", f"{V1}/training/merges/", "viewer", 200),
    Case("GET", f"{V1}/artifacts/", "viewer", 200),
    Case("GET", f"{V1}/artifacts/{{adapter}}/", "viewer", 200),
    Case("POST", f"{V1}/artifacts/{{adapter}}/merge/", "operator", 202),
    Case("GET", f"{V1}/artifacts/{{adapter}}/download/", "viewer", 200),
    # exports
    Case("GET", f"{V1}/exports/", "viewer", 200),
    Case("POST", f"{V1}/exports/", "viewer", 202, lambda w: {"format": "alpaca", "dataset": w.dataset_name}),
    Case("GET", f"{V1}/exports/{{export}}/", "viewer", 200),
    Case("GET", f"{V1}/exports/{{export}}/files/{{export_file}}/", "viewer", 200),
]


def _routes(resolver=None, prefix=""):
    """(route, view class) of every API endpoint."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry, route)
        elif route.startswith("api/"):
            yield route, entry.callback.cls


def _methods(cls) -> set[str]:
    return {m.upper() for m in ("get", "post", "put", "patch", "delete") if hasattr(cls, m)}


class _Fill(dict):
    def __missing__(self, key):
        return "x" if key == "export_file" else "1"


def _route(case: Case) -> str | None:
    """The route the case's path reaches; None for one another part of the project has not added yet."""
    try:
        return resolve(case.path.format_map(_Fill())).route
    except Resolver404:
        return None


def _send(world, case: Case, role: str):
    client = world.client(role)
    path = case.path.format(**world.ids)
    body = case.body(world) if callable(case.body) else case.body
    if case.method == "GET":
        return client.get(path)
    return getattr(client, case.method.lower())(path, body, format=case.format)


def _state() -> dict:
    """What a refused request must leave as it was."""
    models = (Experiment, TrainingJob, MergeJob, ReviewVerdict, ReviewAssignment, ExportJob, ImportJob, LLMEndpoint)
    counts = {model.__name__: model.objects.count() for model in models}
    counts["statuses"] = sorted(Experiment.objects.values_list("pk", "status"))
    counts["tasks"] = sorted(ReviewTask.objects.values_list("pk", "status"))
    counts["endpoints"] = sorted(LLMEndpoint.objects.values_list("pk", "max_concurrency", "name"))
    counts["cancels"] = sorted(TrainingJob.objects.values_list("pk", "cancel_requested"))
    return counts


def test_the_table_covers_every_endpoint():
    served = {(route, method) for route, cls in _routes() for method in _methods(cls)}
    named = {(_route(case), case.method) for case in CASES}
    assert sorted(served - named) == [], "routes and methods without a case in the table"


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_role_gets_what_it_may(world, case, role):
    if _route(case) is None:
        pytest.skip(f"{case.path} is not served yet")
    allowed = LEVEL[role] >= LEVEL[case.role]
    before = None if allowed else _state()
    response = _send(world, case, role)
    if allowed:
        assert response.status_code == case.status, (role, response.content[:500])
        return
    expected = 401 if role == "anonymous" else 403
    assert response.status_code == expected, (role, response.content[:500])
    text = response.content.decode()  # JSON, or the schema's own YAML
    if response["Content-Type"].startswith("text/html"):
        return  # the docs page: the site's own 401/403 page
    if role == "anonymous":
        assert response["WWW-Authenticate"] == "Token"
        assert "Authentication credentials were not provided" in text
    else:
        assert f"needs the {case.role} role" in text, text[:500]
    assert _state() == before
