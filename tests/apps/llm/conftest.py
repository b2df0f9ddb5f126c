"""Fixtures for the gateway's tests: a live test server, endpoints pointing at it, experiments."""

import itertools

import pytest

from apps.experiments.models import Experiment
from apps.llm.lease import lease_acquire, lease_release
from apps.llm.models import LLMEndpoint
from apps.llm.runner import run_endpoint
from apps.llm.selectors import llm_request_for
from tests.factories import DatasetFactory
from tests.llm_server.server import ServerThread
from workers.llm.prompts import get_template

_names = itertools.count()


@pytest.fixture
def llm_server():
    with ServerThread() as server:
        yield server


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setenv("RETORT_LLM_RETRY_BASE_S", "0.01")
    monkeypatch.setenv("RETORT_LLM_RETRY_MAX_S", "0.05")


def make_endpoint(server=None, **fields) -> LLMEndpoint:
    defaults = {
        "name": f"endpoint-{next(_names)}",
        "base_url": server.url if server else "",
        "model": "teacher-a",
        "max_concurrency": 16,
        "timeout_s": 5.0,
    }
    return LLMEndpoint.objects.create(**{**defaults, **fields})


def make_experiment(**fields) -> Experiment:
    defaults = {"name": f"experiment-{next(_names)}", "recipe": "lion", "status": Experiment.Status.RUNNING}
    if "dataset" not in fields:
        defaults["dataset"] = DatasetFactory()
    return Experiment.objects.create(**{**defaults, **fields})


def teacher_requests(endpoint, n, prefix="Explain item", **kw):
    template = get_template("teacher_answer")
    return [llm_request_for(endpoint, template, {"instruction": f"{prefix} {i}."}, **kw) for i in range(n)]


def judge_requests(endpoint, n, prefix="Question"):
    template = get_template("judge_pairwise")
    return [
        llm_request_for(endpoint, template, {"instruction": f"{prefix} {i}?", "answer_1": "Yes.", "answer_2": "No."})
        for i in range(n)
    ]


def drain(endpoint, owner="test-runner"):
    """What the Celery task does, in this process: take the lease, run, give it back."""
    assert lease_acquire(endpoint_id=endpoint.pk, owner=owner, ttl_s=30)
    try:
        return run_endpoint(endpoint, owner=owner)
    finally:
        lease_release(endpoint_id=endpoint.pk, owner=owner)
