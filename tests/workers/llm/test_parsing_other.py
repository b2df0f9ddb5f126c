"""Generator, classifier and rationale contracts."""

import pytest

from workers.llm.contracts import check_reply
from workers.llm.parsing import (
    GeneratorFilters,
    ParseError,
    parse_classification,
    parse_generated_instruction,
    parse_rationale,
)


@pytest.mark.parametrize(
    ("reply", "finish", "code"),
    [
        ("Write a new instruction about cats.", "stop", "generator_mentions_instruction"),
        ("Here is an INSTRUCTION: list fruit", "stop", "generator_mentions_instruction"),
        ("Explain how tides form on a coast with two moons and why", "length", "generator_truncated"),
        ("List three fruits.", "stop", "generator_too_short"),
        ("Sure!", "stop", "generator_too_short"),
        ("- Explain how tides are formed by the moon.", "stop", "generator_leading_punctuation"),
        ("...and then explain how tides work in detail.", "stop", "generator_leading_punctuation"),
        ("   ", "stop", "generator_empty"),
    ],
)
def test_lion_filters_reject_bad_generated_instructions(reply, finish, code):
    with pytest.raises(ParseError) as info:
        parse_generated_instruction(reply, finish_reason=finish)
    assert info.value.code == code


def test_a_good_generated_instruction_is_kept_without_its_quotes():
    parsed = parse_generated_instruction('"Explain how tides are formed by the moon and the sun."')
    assert parsed.text == "Explain how tides are formed by the moon and the sun."


def test_each_generator_filter_can_be_switched_off():
    off = GeneratorFilters(
        reject_mentions_instruction=False, reject_truncated=False, reject_short=False, reject_leading_punctuation=False
    )
    for reply, finish in [
        ("Rewrite this instruction politely please.", "stop"),
        ("Cats.", "stop"),
        ("Explain the tides in full", "length"),
        ("- Explain the tides in full.", "stop"),
    ]:
        assert parse_generated_instruction(reply, finish_reason=finish, filters=off).text


def test_classifier_reads_the_last_answer_tag_and_checks_the_list():
    reply = "It might be <answer>Writing</answer>... no, it is code.\n<ANSWER> coding </ANSWER>"
    assert parse_classification(reply, categories=["Coding", "Writing"]).category == "Coding"
    with pytest.raises(ParseError) as info:
        parse_classification("<answer>Cooking</answer>", categories=["Coding", "Writing"])
    assert info.value.code == "classifier_unknown_category"
    with pytest.raises(ParseError):
        parse_classification("Coding")


def test_rationale_cuts_the_next_few_shot_example_and_maps_choice_letters():
    reply = (
        "Beavers build with wood, found in forests. So the answer is (c) wooded area.\n\n"
        "Q: Where do fish live?\nAnswer Choices:\n(a) sea\nA: Fish live in water. So the answer is (a) sea."
    )
    parsed = parse_rationale(reply, choices=["british columbia", "body of water", "wooded area", "zoo", "den"])
    assert (parsed.label, parsed.choice) == ("wooded area", "c")
    assert parsed.rationale == "Beavers build with wood, found in forests."


def test_rationale_takes_the_final_statement_and_checks_labels():
    reply = "He was born in 1894, so the answer is 71 years. So the answer is entailment."
    assert parse_rationale(reply, labels=["entailment", "neutral", "contradiction"]).label == "entailment"
    with pytest.raises(ParseError) as info:
        parse_rationale("So the answer is entailment.")
    assert info.value.code == "rationale_empty"
    with pytest.raises(ParseError) as info:
        parse_rationale("It could be either of them, really.")
    assert info.value.code == "rationale_no_answer"


def test_contracts_route_to_the_parsers_and_never_default():
    assert check_reply({"kind": "judge"}, "Score of Assistant 1: 3\nScore of Assistant 2: 9").parsed == {
        "assistant_1": 3.0,
        "assistant_2": 9.0,
    }
    broken = check_reply({"kind": "judge"}, "I prefer the first one.")
    assert (broken.valid, broken.parsed, broken.code) == (False, None, "judge_missing_scores")
    assert not check_reply({"kind": "answer"}, "Half an ans", "length").valid
    assert check_reply({"kind": "answer", "accept_truncated": True}, "Half an ans", "length").valid
    assert check_reply({"kind": "classifier", "categories": ["Math"]}, "<answer>math</answer>").parsed == {
        "category": "Math"
    }
    with pytest.raises(ValueError):
        check_reply({"kind": "poetry"}, "text")
