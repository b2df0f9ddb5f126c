"""What a decided review task sets going in the apps above: the round's experiment is woken (its gate may
open), and an unparsable reply a reviewer chose to retry is asked for again through the gateway, against
the test server over HTTP."""

from dataclasses import replace

import pytest

from apps.experiments import wake
from apps.llm import kick
from apps.llm.models import LLMCall, LLMCallUse
from apps.llm.selectors import llm_call_finals
from apps.llm.services import llm_calls_enqueue
from apps.reviews.models import ReviewTask
from apps.reviews.services import review_decide
from tests.apps.llm.conftest import drain, judge_requests, make_endpoint, make_experiment
from tests.apps.reviews.conftest import make_round, reviewer
from tests.factories import ReviewTaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    calls = []
    monkeypatch.setattr(wake, "send", lambda name, *args: calls.append((name, *args)))
    return calls


def test_deciding_a_gate_task_wakes_the_rounds_experiment_once_done(sent, django_capture_on_commit_callbacks):
    round_ = make_round()
    first, second = ReviewTaskFactory(round=round_, required_reviews=2), ReviewTaskFactory(round=round_)
    alice, bob = reviewer(), reviewer()
    with django_capture_on_commit_callbacks(execute=True):
        review_decide(reviewer=alice, task_id=first.pk, decision="accept")
    assert sent == []  # one vote of two decides nothing
    with django_capture_on_commit_callbacks(execute=True):
        review_decide(reviewer=bob, task_id=first.pk, decision="accept")
    assert sent == [(wake.ADVANCE_TASK, round_.experiment_id)]
    wake.woken(round_.experiment_id)
    with django_capture_on_commit_callbacks(execute=True):
        review_decide(reviewer=alice, task_id=second.pk, decision="reject")
    assert sent == [(wake.ADVANCE_TASK, round_.experiment_id)] * 2


def _unparsable_call(llm_server):
    endpoint = make_endpoint(llm_server, model="judge-a")
    llm_server.configure(p_garbage=1.0)
    experiment = make_experiment()
    request = judge_requests(endpoint, 1)[0]
    request = replace(request, contract={**request.contract, "max_resamples": 0})
    [call] = llm_calls_enqueue(
        endpoint=endpoint, requests=[request], purpose="judge", experiment_id=experiment.pk, stage="judge", kick=False
    )
    drain(endpoint)
    call.refresh_from_db()
    assert call.status == LLMCall.Status.INVALID
    return endpoint, call, ReviewTask.objects.get(kind="invalid_reply")


def test_retry_asks_the_teacher_again_and_the_fresh_reply_is_the_outcome(
    llm_server, monkeypatch, django_capture_on_commit_callbacks
):
    kicked = []
    monkeypatch.setattr(kick, "send_on_commit_if_reachable", lambda name, *args: kicked.append((name, *args)))
    endpoint, call, task = _unparsable_call(llm_server)
    cost = call.cost
    with django_capture_on_commit_callbacks(execute=True):
        review_decide(reviewer=reviewer(), task_id=task.pk, decision="retry")
    fresh = LLMCall.objects.get(resample_of=call)
    assert (fresh.status, fresh.sample_index, fresh.endpoint_id) == ("pending", call.sample_index + 1, endpoint.pk)
    assert list(LLMCallUse.objects.filter(call=fresh).values_list("experiment_id", "stage")) == list(
        LLMCallUse.objects.filter(call=call).values_list("experiment_id", "stage")
    )
    assert kicked == [(kick.PROCESS_TASK, endpoint.pk)]
    requests_before = llm_server.stats().requests
    llm_server.configure(p_garbage=0.0)
    drain(endpoint)
    assert llm_server.stats().requests == requests_before + 1
    call.refresh_from_db()
    assert (call.status, call.cost) == ("invalid", cost)  # the unparsable call stays in the ledger as paid
    final = llm_call_finals([call.pk])[call.pk]
    assert final.pk == fresh.pk and final.status == "ok" and set(final.parsed) == {"assistant_1", "assistant_2"}


def test_a_retried_reply_that_is_unparsable_again_comes_back_to_the_queue(
    llm_server, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(kick, "send_on_commit_if_reachable", lambda name, *args: None)
    endpoint, call, task = _unparsable_call(llm_server)
    with django_capture_on_commit_callbacks(execute=True):
        review_decide(reviewer=reviewer(), task_id=task.pk, decision="retry")
    drain(endpoint)
    fresh = LLMCall.objects.get(resample_of=call)
    assert fresh.status == "invalid"
    again = ReviewTask.objects.exclude(pk=task.pk).get(kind="invalid_reply")
    assert again.status == "open" and LLMCallUse.objects.get(pk=again.subject_id).call_id == fresh.pk


def test_rejecting_an_unparsable_reply_sends_nothing(llm_server, django_capture_on_commit_callbacks):
    _, call, task = _unparsable_call(llm_server)
    with django_capture_on_commit_callbacks(execute=True):
        review_decide(reviewer=reviewer(), task_id=task.pk, decision="reject")
    assert not LLMCall.objects.filter(resample_of=call).exists()
