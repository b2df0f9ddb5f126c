"""The local task classifier is an offline endpoint: it needs no dataset, answers classifier requests through
the offline runner in the classifier contract, and carries its confidence in the parsed result."""

import pytest

from apps.llm import offline
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.selectors import llm_request_for
from apps.llm.services import llm_calls_enqueue, llm_endpoint_create, llm_endpoint_test
from tests.apps.llm.conftest import drain, make_experiment
from workers.llm.prompts import TASK_CATEGORIES, get_template

pytestmark = pytest.mark.django_db

QUESTIONS = {
    "Solve for x: 3x + 7 = 22. Show the value of x.": "Math",
    "Write a Python function that returns the n-th Fibonacci number.": "Code Generation",
    "Compose a short poem about the sea at dawn for a travel magazine.": "Writing",
}


def _classifier() -> LLMEndpoint:
    return llm_endpoint_create(name="offline:task-classifier", backend=LLMEndpoint.Backend.LOCAL_CLASSIFIER)


def test_the_local_classifier_labels_through_the_offline_runner_with_its_confidence():
    endpoint = _classifier()
    assert endpoint.is_offline and endpoint.offline_dataset_id is None and endpoint.model == "offline_local_classifier"
    template = get_template("classify_task")
    requests = [llm_request_for(endpoint, template, {"instruction": text, "input": ""}) for text in QUESTIONS]
    calls = llm_calls_enqueue(
        endpoint=endpoint, requests=requests, purpose="classifier", experiment_id=make_experiment().pk, kick=False
    )
    summary = drain(endpoint)
    assert summary.ok == 3 and not summary.stopped
    rows = LLMCall.objects.in_bulk([c.pk for c in calls])
    for call, expected in zip(calls, QUESTIONS.values(), strict=True):
        row = rows[call.pk]
        assert row.status == "ok" and row.cost == 0
        assert row.parsed["category"] == expected, row.reply
        assert 0.0 < row.parsed["confidence"] <= 1.0
        assert f"<answer>{expected}</answer>" in row.reply
        assert f"<confidence>{row.parsed['confidence']:.4f}</confidence>" in row.reply
    # The head is trained once per worker process and kept.
    assert len(offline._HEADS) == 1


def test_a_request_that_offers_part_of_the_vocabulary_gets_a_label_from_that_part():
    endpoint = _classifier()
    template = get_template("classify_task")
    text = "Write a Python function that returns the n-th Fibonacci number."
    offered = ["Writing", "Roleplay"]
    narrow = llm_request_for(endpoint, template, {"instruction": text, "categories": offered})
    wide = llm_request_for(endpoint, template, {"instruction": text, "categories": list(TASK_CATEGORIES)})
    llm_calls_enqueue(endpoint=endpoint, requests=[narrow, wide], purpose="classifier", kick=False)
    drain(endpoint)
    got = {c.request_hash: c.parsed for c in LLMCall.objects.all()}
    assert got[narrow.hash]["category"] in offered
    assert got[wide.hash]["category"] == "Code Generation"
    # Renormalised over the offered part: the two offered labels' confidences cover the whole mass.
    assert got[narrow.hash]["confidence"] >= 0.5


def test_it_needs_no_dataset_and_says_so_when_tested():
    endpoint = _classifier()
    check = llm_endpoint_test(endpoint=endpoint)
    assert check.ok and "local task classifier" in check.message
    with pytest.raises(Exception, match="dataset"):
        llm_endpoint_create(name="replay-without-data", backend=LLMEndpoint.Backend.REPLAY)


def test_the_classifier_contract_carries_a_confidence_only_when_the_reply_gives_one():
    from workers.llm.contracts import check_reply

    contract = {"kind": "classifier", "categories": ["Math", "Writing"]}
    assert check_reply(contract, "<answer>Math</answer>").parsed == {"category": "Math"}
    sure = check_reply(contract, "<answer>math</answer>\n<confidence>0.8125</confidence>")
    assert sure.parsed == {"category": "Math", "confidence": 0.8125}
    for bad in ("<confidence>1.5</confidence>", "<confidence>very</confidence>"):
        check = check_reply(contract, f"<answer>Math</answer>{bad}")
        assert not check.valid and check.code == "classifier_bad_confidence"
