"""Prompt templates: every file loads, declares what it uses, renders, and builds hashed requests."""

import pytest

from workers.algorithms.task_vocabulary import UnknownTaskLabel
from workers.llm.contracts import KINDS
from workers.llm.prompts import (
    PROMPT_DIR,
    STYLE_TEMPLATES,
    TASK_CATEGORIES,
    TemplateError,
    all_templates,
    build_request,
    get_template,
    latest_templates,
    style_for_task_type,
)

PURPOSES = {"teacher", "judge", "generator", "classifier"}
REQUIRED = {
    "teacher_answer",
    "judge_pairwise",
    "generate_hard",
    "generate_easy",
    "expand_seed",
    "rewrite_chain_of_thought",
    "rewrite_commented_code",
    "rewrite_detailed",
    "rationale_fewshot",
    "classify_task",
}


def test_there_is_one_template_per_purpose_and_each_is_consistent():
    templates = latest_templates()
    assert {t.id for t in templates} >= REQUIRED
    assert len(list(PROMPT_DIR.glob("*.toml"))) == len(all_templates())
    for t in templates:
        assert t.purpose in PURPOSES and t.contract in KINDS, t.id
        assert t.placeholders() == set(t.variables), t.id
        assert t.title and t.description


def test_rendering_fills_every_placeholder():
    sample = {
        "instruction": "Sum 2 and 3.",
        "input": "",
        "answer": "5",
        "answer_1": "5",
        "answer_2": "6",
        "task_type": "Math",
        "question": "Q: What is 2 + 3?",
        "categories": TASK_CATEGORIES,
    }
    for t in latest_templates():
        messages = t.render(sample)
        text = "\n".join(m["content"] for m in messages)
        assert not any(f"${name}" in text for name in t.variables), t.id
        assert messages[-1]["role"] == "user"
        assert ("Sum 2 and 3." in text) or ("What is 2 + 3" in text), t.id


def test_task_joins_instruction_and_input():
    messages = get_template("teacher_answer").render({"instruction": "Translate.", "input": "Bonjour"})
    assert messages[-1]["content"] == "Translate.\n\nBonjour"


def test_missing_variables_and_unknown_templates_are_errors():
    with pytest.raises(TemplateError):
        get_template("judge_pairwise").render({"instruction": "x"})
    with pytest.raises(TemplateError):
        get_template("no_such_template")
    with pytest.raises(TemplateError):
        get_template("judge_pairwise", 99)


def test_rationale_examples_follow_their_own_contract_for_every_task_type():
    from workers.llm.parsing import parse_rationale

    template = get_template("rationale_fewshot")
    assert set(template.examples) == {"multiple_choice", "nli", "arithmetic", "generic"}
    for examples in template.examples.values():
        for example in examples:
            assert parse_rationale(example["answer"]).label


def test_style_follows_the_task_type():
    tasks = ("Math", "reasoning", "Code Generation", "Code Debug", "coding", "Writing", "Others", "")
    assert [style_for_task_type(t) for t in tasks] == [
        "chain_of_thought",
        "chain_of_thought",
        "commented_code",
        "commented_code",  # debugging is code too (it used to get the detailed style)
        "commented_code",  # MT-Bench's and Vicuna's label, mapped to Code Generation
        "detailed",
        "detailed",
        "detailed",
    ]
    assert set(STYLE_TEMPLATES.values()) <= {t.id for t in latest_templates()}
    with pytest.raises(UnknownTaskLabel):
        style_for_task_type("Poetry slam")


def test_build_request_merges_defaults_and_records_template_and_contract():
    template = get_template("classify_task")
    request = build_request(
        template,
        {"instruction": "Sort a list.", "categories": ["Code Generation", "Math"]},
        model="classifier-x",
        params={"max_tokens": 50},
        defaults={"temperature": 0.2},
    )
    assert request.params == {"temperature": 0.2, "max_tokens": 50}
    assert request.template == {"id": "classify_task", "version": 1}
    # The reply must name a category the prompt offered.
    assert request.contract == {"kind": "classifier", "categories": ["Code Generation", "Math"]}
    assert request.vars["instruction"] == "Sort a list."
