"""Errors that retrying cannot fix pause the stage with a reason that names the endpoint and the HTTP
status, and API keys never appear in the database, pages, logs or API output."""

import logging

import pytest
from django.urls import reverse

from apps.core.roles import Role
from apps.experiments.models import Experiment
from apps.experiments.services import experiment_hold, experiment_resume
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.services import llm_calls_enqueue
from tests.apps.llm.conftest import drain, make_endpoint, make_experiment, teacher_requests

pytestmark = pytest.mark.django_db
SECRET = "sk-retort-test-7f3a9c2b1e8d4f6a0b5c"


def _everything_readable(client, api, experiment, endpoint) -> str:
    texts = [repr(list(LLMCall.objects.values()))]
    texts += [repr(list(LLMEndpoint.objects.values())), repr(list(Experiment.objects.values()))]
    for url in (
        reverse("llm:endpoints"),
        reverse("llm:endpoint", args=[endpoint.pk]),
        reverse("experiments:costs", args=[experiment.pk]),
        reverse("llm:costs"),
    ):
        texts.append(client.get(url).content.decode())
    for url in (
        "/api/v1/llm/calls/",
        f"/api/v1/llm/endpoints/{endpoint.pk}/",
        f"/api/v1/experiments/{experiment.pk}/costs/",
    ):
        texts.append(api.get(url).content.decode())
    return "\n".join(texts)


def test_a_rejected_key_pauses_everything_waiting_and_leaks_nowhere(
    llm_server, monkeypatch, caplog, client_for, api_for
):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TEST_RUNNER_API_KEY", SECRET)
    llm_server.configure(api_key="the-right-key-0000")  # the server echoes the wrong key in its 401 body
    endpoint = make_endpoint(llm_server, name="teacher-prod", api_key_env="TEST_RUNNER_API_KEY", max_concurrency=2)
    first, second = make_experiment(), make_experiment()
    requests = teacher_requests(endpoint, 10)
    llm_calls_enqueue(
        endpoint=endpoint, requests=requests[:5], purpose="teacher", experiment_id=first.pk, stage="answer", kick=False
    )
    llm_calls_enqueue(
        endpoint=endpoint, requests=requests[5:], purpose="teacher", experiment_id=second.pk, stage="answer", kick=False
    )
    summary = drain(endpoint)
    assert summary.stopped and summary.paused == {first.pk, second.pk}
    for experiment in (first, second):
        experiment.refresh_from_db()
        assert experiment.status == Experiment.Status.PAUSED
        assert "teacher-prod" in experiment.status_reason and "HTTP 401" in experiment.status_reason
    assert LLMCall.objects.filter(status=LLMCall.Status.PENDING).count() == 10  # nothing lost
    assert llm_server.stats().requests < 10  # it stopped instead of trying every call

    readable = _everything_readable(client_for(Role.VIEWER), api_for(Role.VIEWER), first, endpoint)
    readable += caplog.text
    assert "HTTP 401" in readable
    for fragment in (SECRET, SECRET[:8], SECRET[-6:]):
        assert fragment not in readable

    # Fixed and resumed: the same calls go through, each once.
    llm_server.configure(api_key=SECRET)
    for experiment in (first, second):
        experiment_resume(experiment_id=experiment.pk)
    assert drain(endpoint).ok == 10


def test_a_missing_key_variable_pauses_with_its_name(llm_server, monkeypatch):
    monkeypatch.delenv("MISSING_TEST_API_KEY", raising=False)
    endpoint = make_endpoint(llm_server, api_key_env="MISSING_TEST_API_KEY")
    experiment = make_experiment()
    llm_calls_enqueue(
        endpoint=endpoint,
        requests=teacher_requests(endpoint, 2),
        purpose="teacher",
        experiment_id=experiment.pk,
        kick=False,
    )
    drain(endpoint)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.PAUSED and "MISSING_TEST_API_KEY" in experiment.status_reason
    assert llm_server.stats().requests == 0


@pytest.mark.parametrize("status", [403, 404])
def test_forbidden_or_unknown_model_pauses_without_retrying(llm_server, status):
    endpoint = make_endpoint(llm_server, model=f"status-{status}")
    experiment = make_experiment()
    llm_calls_enqueue(
        endpoint=endpoint,
        requests=teacher_requests(endpoint, 3),
        purpose="teacher",
        experiment_id=experiment.pk,
        stage="answer",
        kick=False,
    )
    drain(endpoint)
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.PAUSED and f"HTTP {status}" in experiment.status_reason
    assert "stage 'answer'" in experiment.status_reason
    assert LLMEndpoint.objects.get(pk=endpoint.pk).last_error.startswith("Paused stage 'answer'")
    assert set(LLMCall.objects.values_list("attempts", flat=True)) <= {0, 1}


def test_a_rejected_request_fails_that_call_and_pauses_only_its_experiment(llm_server):
    bad_endpoint = make_endpoint(llm_server, model="status-400")
    good_endpoint = make_endpoint(llm_server)
    bad, good = make_experiment(), make_experiment()
    llm_calls_enqueue(
        endpoint=bad_endpoint,
        requests=teacher_requests(bad_endpoint, 1),
        purpose="teacher",
        experiment_id=bad.pk,
        kick=False,
    )
    llm_calls_enqueue(
        endpoint=good_endpoint,
        requests=teacher_requests(good_endpoint, 3),
        purpose="teacher",
        experiment_id=good.pk,
        kick=False,
    )
    drain(bad_endpoint)
    drain(good_endpoint)
    bad.refresh_from_db()
    good.refresh_from_db()
    assert (bad.status, good.status) == (Experiment.Status.PAUSED, Experiment.Status.RUNNING)
    failed = LLMCall.objects.get(endpoint=bad_endpoint)
    assert (failed.status, failed.http_status, failed.attempts) == ("failed", 400, 1)
    assert LLMCall.objects.filter(endpoint=good_endpoint, status="ok").count() == 3


def test_calls_of_a_paused_experiment_wait(llm_server):
    endpoint = make_endpoint(llm_server)
    experiment = make_experiment()
    experiment_hold(experiment_id=experiment.pk, reason="Paused by an operator.")
    llm_calls_enqueue(
        endpoint=endpoint,
        requests=teacher_requests(endpoint, 3),
        purpose="teacher",
        experiment_id=experiment.pk,
        kick=False,
    )
    assert drain(endpoint).sent == 0
    experiment_resume(experiment_id=experiment.pk)
    assert drain(endpoint).sent == 3
