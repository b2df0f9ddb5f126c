"""A 5,000-request batch against the test server with 20 % of replies faulty: every item ends answered or
marked invalid or failed with its reason, and a re-run makes no new call."""

from collections import Counter

import pytest

from apps.llm.models import LLMCall, LLMCallUse
from apps.llm.selectors import llm_call_finals
from apps.llm.services import llm_calls_enqueue
from apps.reviews.models import ReviewTask
from tests.apps.llm.conftest import drain, judge_requests, make_endpoint, make_experiment

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
N = 5000


def test_a_5000_call_batch_with_20_percent_faults_loses_nothing(llm_server, monkeypatch):
    monkeypatch.setenv("RETORT_LLM_MAX_ATTEMPTS", "6")
    llm_server.configure(
        latency_s=0.001,
        jitter_s=0.004,
        p_429=0.05,
        p_500=0.05,
        p_timeout=0.02,
        p_truncated=0.04,
        p_garbage=0.04,
        retry_after_s=0.005,
        hang_s=1.0,
        seed=7,
    )
    endpoint = make_endpoint(llm_server, model="judge-a", max_concurrency=64, timeout_s=0.25)
    calls = llm_calls_enqueue(
        endpoint=endpoint,
        requests=judge_requests(endpoint, N),
        purpose="judge",
        experiment_id=make_experiment().pk,
        stage="judge",
        kick=False,
    )
    summary = drain(endpoint)
    assert not summary.stopped

    faults = llm_server.stats()
    assert faults.by_status["429"] > 100 and faults.by_status["500"] > 100 and faults.by_fault["timeout"] > 40
    assert faults.by_fault["garbage"] > 100 and faults.by_fault["truncated"] > 100

    finals = llm_call_finals([c.pk for c in calls])
    assert len(finals) == N
    outcome = Counter(f.status for f in finals.values())
    assert LLMCall.objects.filter(status=LLMCall.Status.PENDING).count() == 0
    assert set(outcome) <= {"ok", "invalid", "failed"} and outcome["ok"] > 0.98 * N
    for final in finals.values():
        if final.status == "ok":
            assert set(final.parsed) == {"assistant_1", "assistant_2"}
        else:
            assert final.error and final.parsed is None
    invalid = {f.pk for f in finals.values() if f.status == "invalid"}
    # Each invalid final goes to review once, as its experiment's use.
    assert set(ReviewTask.objects.values_list("subject_id", flat=True)) == set(
        LLMCallUse.objects.filter(call_id__in=invalid).values_list("pk", flat=True)
    )
    assert LLMCallUse.objects.filter(call_id__in=invalid).count() == len(invalid)
    print(
        f"\n{N} items: {dict(outcome)}; server saw {faults.requests} requests "
        f"({dict(faults.by_status)}, {dict(faults.by_fault)})"
    )

    # The same batch again: all answered from the ledger.
    before = llm_server.stats().requests
    again = llm_calls_enqueue(endpoint=endpoint, requests=judge_requests(endpoint, N), purpose="judge", kick=False)
    assert [c.pk for c in again] == [c.pk for c in calls]
    assert drain(endpoint).sent == 0
    assert llm_server.stats().requests == before
