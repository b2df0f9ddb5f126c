"""Unparsable replies: fresh samples up to a limit, then a person's queue; never a silent default."""

import pytest

from apps.llm.models import LLMCall, LLMCallUse
from apps.llm.selectors import llm_call_finals
from apps.llm.services import llm_calls_enqueue
from apps.reviews.models import ReviewTask
from tests.apps.llm.conftest import drain, judge_requests, make_endpoint, make_experiment

pytestmark = pytest.mark.django_db


def test_garbage_is_resampled_then_sent_to_review_and_never_scored(llm_server):
    endpoint = make_endpoint(llm_server, model="judge-a")
    llm_server.configure(p_garbage=1.0)
    experiment = make_experiment()
    calls = llm_calls_enqueue(
        endpoint=endpoint,
        requests=judge_requests(endpoint, 4),
        purpose="judge",
        experiment_id=experiment.pk,
        stage="judge",
        kick=False,
    )
    summary = drain(endpoint)
    assert (summary.invalid, summary.resampled) == (12, 8)  # 1 + 2 fresh samples per item
    assert LLMCall.objects.filter(status=LLMCall.Status.INVALID, parsed__isnull=True).count() == 12
    finals = llm_call_finals([c.pk for c in calls])
    assert {f.sample_index for f in finals.values()} == {2}
    assert all(f.error.startswith("Unparsable reply (judge_missing_scores)") for f in finals.values())
    # One review task per use of each final call: the experiment's own, in its stage.
    tasks = ReviewTask.objects.filter(kind=ReviewTask.Kind.INVALID_REPLY)
    uses = LLMCallUse.objects.filter(call__in=list(finals.values()))
    assert sorted(t.subject_id for t in tasks) == sorted(u.pk for u in uses) and len(uses) == 4
    assert {t.subject_type.model for t in tasks} == {"llmcalluse"}
    assert all(u.stage == "judge" and u.experiment_id == experiment.pk for u in uses)


def test_a_fresh_sample_usually_rescues_a_bad_reply(llm_server):
    endpoint = make_endpoint(llm_server, model="judge-a")
    llm_server.configure(p_garbage=0.25, p_truncated=0.1, seed=11)
    calls = llm_calls_enqueue(endpoint=endpoint, requests=judge_requests(endpoint, 60), purpose="judge", kick=False)
    drain(endpoint)
    finals = llm_call_finals([c.pk for c in calls])
    ok = [f for f in finals.values() if f.status == LLMCall.Status.OK]
    assert len(ok) >= 48 and all(set(f.parsed) == {"assistant_1", "assistant_2"} for f in ok)
    assert any(f.sample_index > 0 for f in ok)
    review = set(ReviewTask.objects.values_list("subject_id", flat=True))
    assert review == {f.pk for f in finals.values() if f.status == LLMCall.Status.INVALID}


def test_the_resample_limit_comes_from_the_contract(llm_server):
    endpoint = make_endpoint(llm_server, model="judge-a")
    llm_server.configure(p_garbage=1.0)
    request = judge_requests(endpoint, 1)[0]
    from dataclasses import replace

    request = replace(request, contract={**request.contract, "max_resamples": 0})
    [call] = llm_calls_enqueue(endpoint=endpoint, requests=[request], purpose="judge", kick=False)
    drain(endpoint)
    assert LLMCall.objects.count() == 1
    assert ReviewTask.objects.get().subject_id == call.pk
