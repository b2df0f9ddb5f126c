"""The paid-call cache and ledger: each request is paid once, results land with tokens, cost and latency."""

from decimal import Decimal

import pytest

from apps.core.errors import RetortError
from apps.llm.models import LLMCall
from apps.llm.services import llm_calls_enqueue, llm_calls_retry_failed
from tests.apps.llm.conftest import drain, make_endpoint, make_experiment, teacher_requests

pytestmark = pytest.mark.django_db


def test_enqueue_returns_one_row_per_request_and_dedupes(llm_server):
    endpoint = make_endpoint(llm_server)
    requests = teacher_requests(endpoint, 5)
    calls = llm_calls_enqueue(endpoint=endpoint, requests=requests + requests[:2], purpose="teacher", kick=False)
    assert [c.request_hash for c in calls] == [r.hash for r in requests + requests[:2]]
    assert LLMCall.objects.count() == 5
    assert calls[0].status == LLMCall.Status.PENDING and calls[0].request["template"]["id"] == "teacher_answer"


def test_enqueue_kicks_the_runner_only_after_commit(llm_server, django_capture_on_commit_callbacks):
    endpoint = make_endpoint(llm_server)
    with django_capture_on_commit_callbacks() as callbacks:
        llm_calls_enqueue(endpoint=endpoint, requests=teacher_requests(endpoint, 2), purpose="teacher", kick=True)
    assert len(callbacks) == 1


def test_requests_for_another_backend_are_refused(llm_server):
    endpoint = make_endpoint(llm_server)
    offline = make_endpoint(backend="offline_replay", model="replay")
    with pytest.raises(RetortError):
        llm_calls_enqueue(endpoint=offline, requests=teacher_requests(endpoint, 1), purpose="teacher", kick=False)


def test_a_finished_call_is_never_made_again(llm_server):
    endpoint = make_endpoint(llm_server, price_input_per_mtok=Decimal("2"), price_output_per_mtok=Decimal("10"))
    experiment = make_experiment()
    requests = teacher_requests(endpoint, 30)
    llm_calls_enqueue(
        endpoint=endpoint, requests=requests, purpose="teacher", experiment_id=experiment.pk, stage="answer", kick=False
    )
    summary = drain(endpoint)
    assert (summary.sent, summary.ok) == (30, 30)
    assert llm_server.stats().requests == 30
    call = LLMCall.objects.first()
    assert call.status == LLMCall.Status.OK and call.reply.startswith("Here is a careful answer")
    assert call.prompt_tokens > 0 and call.completion_tokens > 0 and call.latency_ms is not None
    assert call.cost == (Decimal(call.prompt_tokens) * 2 + Decimal(call.completion_tokens) * 10) / 1_000_000
    assert call.finished_at is not None and call.attempts == 1

    # A re-run, and the same requests from another experiment: zero new calls, the same rows.
    first_calls = sorted(LLMCall.objects.values_list("pk", flat=True))
    again = llm_calls_enqueue(
        endpoint=endpoint,
        requests=requests,
        purpose="teacher",
        experiment_id=make_experiment().pk,
        stage="answer",
        kick=False,
    )
    assert {c.status for c in again} == {LLMCall.Status.OK} and sorted(c.pk for c in again) == first_calls
    assert drain(endpoint).sent == 0
    assert llm_server.stats().requests == 30

    # Unless a fresh sample is asked for.
    llm_calls_enqueue(endpoint=endpoint, requests=[requests[0].with_sample(1)], purpose="teacher", kick=False)
    assert drain(endpoint).sent == 1 and llm_server.stats().requests == 31


def test_failed_calls_are_resent_only_when_an_operator_asks(llm_server):
    endpoint = make_endpoint(llm_server)
    llm_server.configure(p_500=1.0)
    experiment = make_experiment()
    llm_calls_enqueue(
        endpoint=endpoint,
        requests=teacher_requests(endpoint, 3),
        purpose="teacher",
        experiment_id=experiment.pk,
        kick=False,
    )
    drain(endpoint)
    assert set(LLMCall.objects.values_list("status", "http_status")) == {("failed", 500)}
    assert "gave up after 8 attempts" in LLMCall.objects.first().error
    assert drain(endpoint).sent == 0
    llm_server.configure(p_500=0.0)
    assert llm_calls_retry_failed(experiment_id=experiment.pk) == 3
    assert drain(endpoint).ok == 3


def test_the_runner_can_drive_the_client_in_a_child_process(llm_server, monkeypatch):
    monkeypatch.setenv("RETORT_LLM_PROCESS_THRESHOLD", "0")
    endpoint = make_endpoint(llm_server, model="judge-a")
    llm_server.configure(p_garbage=0.2, seed=2)
    llm_calls_enqueue(endpoint=endpoint, requests=teacher_requests(endpoint, 40), purpose="judge", kick=False)
    summary = drain(endpoint)
    assert summary.sent >= 40 and not LLMCall.objects.filter(status=LLMCall.Status.PENDING).exists()


def test_a_call_remembers_its_template_for_the_response_that_stores_it(llm_server):
    from apps.llm.selectors import llm_call_template

    endpoint = make_endpoint(llm_server)
    [call] = llm_calls_enqueue(endpoint=endpoint, requests=teacher_requests(endpoint, 1), purpose="teacher", kick=False)
    assert llm_call_template(call) == ("teacher_answer", 1)


def test_the_admin_can_test_an_endpoint(llm_server, admin_client):
    endpoint = make_endpoint(llm_server)
    response = admin_client.post(
        "/admin/llm/llmendpoint/", {"action": "test_connection", "_selected_action": [endpoint.pk]}, follow=True
    )
    assert "Connected: teacher-a answered" in response.content.decode()
