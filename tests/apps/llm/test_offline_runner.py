"""Offline endpoints through the same runner: replay, similarity judge, retrieval generator."""

import pytest

from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.selectors import llm_request_for
from apps.llm.services import llm_calls_enqueue, llm_endpoint_test
from tests.apps.llm.conftest import drain, make_endpoint, make_experiment
from tests.factories import DatasetFactory, InstructionFactory
from workers.llm.parsing import parse_judge
from workers.llm.prompts import get_template

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorded():
    dataset = DatasetFactory(name="gpt4-answers")
    rows = [
        (
            "What is the boiling point of water at sea level?",
            "Water boils at 100 degrees Celsius at sea level.",
            "STEM",
        ),
        (
            "Write a haiku about autumn leaves.",
            "Red leaves drift and fall / the cold wind hums through bare trees / autumn says goodbye",
            "Writing",
        ),
        (
            "Explain what a binary search does.",
            "Binary search finds an item in a sorted list by halving the range it searches at every step.",
            "Coding",
        ),
    ]
    for text, output, category in rows:
        InstructionFactory(dataset=dataset, text=text, reference_output=output, task_category=category)
    return dataset


def test_replay_answers_from_the_recorded_outputs_and_says_when_it_has_none(recorded):
    endpoint = make_endpoint(backend=LLMEndpoint.Backend.REPLAY, model="gpt-4-recorded", offline_dataset=recorded)
    template = get_template("teacher_answer")
    texts = list(recorded.instructions.values_list("text", "reference_output"))
    requests = [llm_request_for(endpoint, template, {"instruction": t, "input": ""}) for t, _ in texts]
    requests.append(llm_request_for(endpoint, template, {"instruction": "Something never recorded."}))
    calls = llm_calls_enqueue(
        endpoint=endpoint, requests=requests, purpose="teacher", experiment_id=make_experiment().pk, kick=False
    )
    drain(endpoint)
    got = {c.pk: c for c in LLMCall.objects.all()}
    assert [got[c.pk].reply for c in calls[:3]] == [out for _, out in texts]
    assert got[calls[3].pk].status == "failed" and "No recorded answer" in got[calls[3].pk].error
    assert all(got[c.pk].cost == 0 for c in calls)
    assert llm_endpoint_test(endpoint=endpoint).message == "Offline: 3 recorded answers in gpt4-answers."


def test_replay_classifies_from_the_recorded_task_category(recorded):
    endpoint = make_endpoint(backend=LLMEndpoint.Backend.REPLAY, model="labels", offline_dataset=recorded)
    template = get_template("classify_task")
    requests = [
        llm_request_for(
            endpoint,
            template,
            {"instruction": t, "categories": ["Others", "Writing", "Code Generation"]},
        )
        for t in recorded.instructions.values_list("text", flat=True)
    ]
    llm_calls_enqueue(endpoint=endpoint, requests=requests, purpose="classifier", kick=False)
    drain(endpoint)
    # Recorded STEM and Coding (MT-Bench's labels) are replayed in the task vocabulary's words.
    assert sorted(LLMCall.objects.values_list("parsed__category", flat=True)) == [
        "Code Generation",
        "Others",
        "Writing",
    ]


def test_the_similarity_judge_scores_through_the_runner(recorded):
    endpoint = make_endpoint(
        backend=LLMEndpoint.Backend.SIMILARITY_JUDGE, model="minilm-judge", offline_dataset=recorded
    )
    template = get_template("judge_pairwise")
    request = llm_request_for(
        endpoint,
        template,
        {
            "instruction": "What is the boiling point of water at sea level?",
            "input": "",
            "answer_1": "At sea level water boils at 100 °C.",
            "answer_2": "The moon orbits the earth.",
        },
    )
    [call] = llm_calls_enqueue(endpoint=endpoint, requests=[request], purpose="judge", kick=False)
    drain(endpoint)
    call.refresh_from_db()
    assert call.status == "ok" and call.parsed["assistant_1"] > call.parsed["assistant_2"]
    assert parse_judge(call.reply).assistant_1 == call.parsed["assistant_1"]


def test_the_retrieval_generator_proposes_unseen_reserve_instructions(recorded):
    seeds = DatasetFactory(name="seeds")
    InstructionFactory(dataset=seeds, text="Explain what a binary search does.")  # also in the reserve
    endpoint = make_endpoint(backend=LLMEndpoint.Backend.RETRIEVAL_GENERATOR, model="reserve", offline_dataset=recorded)
    experiment = make_experiment(dataset=seeds)
    template = get_template("generate_hard")
    request = llm_request_for(endpoint, template, {"instruction": "Explain how quicksort partitions an array."})
    [call] = llm_calls_enqueue(
        endpoint=endpoint,
        requests=[request, request.with_sample(1)][:1],
        purpose="generator",
        experiment_id=experiment.pk,
        kick=False,
    )
    drain(endpoint)
    call.refresh_from_db()
    assert call.status == "ok"
    assert call.parsed["text"] in set(recorded.instructions.values_list("text", flat=True))
    assert call.parsed["text"] != "Explain what a binary search does."  # seen in the experiment's seeds


def test_an_offline_endpoint_without_a_dataset_is_refused():
    from apps.core.errors import RetortError
    from apps.llm.services import llm_endpoint_create

    with pytest.raises(RetortError):
        llm_endpoint_create(name="x", backend=LLMEndpoint.Backend.REPLAY, model="m")
