"""One rationale parser: the reply contract (workers.llm.parsing) reads a reply exactly as the step-by-step
example builder (workers.algorithms.step_by_step) does. Each reply below was read two ways before."""

import pytest

from workers.algorithms.step_by_step import parse_rationale as step_by_step_parse
from workers.llm.contracts import check_reply
from workers.llm.parsing import ParseError, parse_rationale

CHOICES = ["pond", "forest", "desert", "kitchen", "lake"]


def _both(reply, *, dataset="generic", **options):
    ours = step_by_step_parse(dataset, reply, **options)
    try:
        contract = parse_rationale(reply, dataset=dataset, **options)
    except ParseError as error:
        assert error.code == ours.code
        return ours, None
    assert ours.ok and (contract.rationale, contract.label, contract.choice) == (
        ours.rationale,
        ours.label,
        ours.choice or "",
    )
    return ours, contract


def test_an_answer_naming_two_choices_is_unparsed_in_both():
    # The contract used to take the first letter and record "pond".
    reply = "Both hold still water. So the answer is (a) pond or (e) lake."
    ours, contract = _both(reply, dataset="cqa", choices=CHOICES)
    assert (ours.problem, contract) == ("ambiguous answer", None)
    assert check_reply({"kind": "rationale", "choices": CHOICES}, reply).code == "rationale_ambiguous"


def test_reasoning_over_two_paragraphs_keeps_both_in_both():
    # The builder used to cut at the blank line and find no answer; the contract found one.
    reply = (
        "Parks are outdoor places.\n\nSo someone feeding pigeons in a park is outdoors. So the answer is entailment."
    )
    _, contract = _both(reply, dataset="anli")
    assert contract.label == "entailment"
    assert contract.rationale == "Parks are outdoor places.\n\nSo someone feeding pigeons in a park is outdoors."


def test_an_answer_with_a_full_stop_inside_is_kept_whole_in_both():
    # The contract used to stop at the first full stop and record "St".
    _, contract = _both("It lies where the rivers meet. So the answer is St. Louis.")
    assert contract.label == "St. Louis"


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("So the answer is entailment.", "rationale_empty"),
        ("It could be either of them, really.", "rationale_no_answer"),
        ("Two and two. The answer is (2 +", "rationale_bad_equation"),
    ],
)
def test_problems_carry_the_same_code(reply, code):
    dataset = "svamp" if "(2 +" in reply else "generic"
    ours, contract = _both(reply, dataset=dataset)
    assert (ours.code, contract) == (code, None)
