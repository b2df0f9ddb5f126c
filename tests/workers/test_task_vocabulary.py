"""One task vocabulary: the classifier prompt offers it, the local classifier learns it, the resampling
ratios and response styles are keyed by it, and benchmark labels reach it only through its mapping."""

import re
import zlib
from collections import Counter

import numpy as np
import pytest

from workers.algorithms.resampling import TAPIR_TASK_RATIOS, ResamplingConfig, resample_by_task
from workers.algorithms.task_vocabulary import (
    MT_BENCH_TO_TAPIR,
    TASK_CATEGORIES,
    VICUNA_TO_TAPIR,
    UnknownTaskLabel,
    response_style,
    to_task_category,
)
from workers.classify.labelled import benchmark_instructions
from workers.classify.task_classifier import TaskClassifier
from workers.llm.contracts import check_reply
from workers.llm.offline import Reference
from workers.llm.offline.backends import OfflineItem, ReplayBackend
from workers.llm.prompts import TemplateError, build_request, get_template

MT_BENCH_LABELS = {"writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"}
VICUNA_LABELS = {
    "generic", "knowledge", "roleplay", "common-sense", "fermi", "counterfactual", "coding", "math", "writing",
}  # fmt: skip


def _offered(request) -> list[str]:
    """The categories a rendered classifier prompt lists, one '- Category' line each."""
    return re.findall(r"^- (.+)$", request.messages[-1]["content"], re.MULTILINE)


class HashedWords:
    """A stand-in sentence encoder (hashed bag of words), so the head's labels are tested without a model."""

    def encode(self, texts):
        out = np.zeros((len(texts), 256))
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, zlib.crc32(word.encode()) % 256] += 1.0
        return out / np.maximum(1.0, np.linalg.norm(out, axis=1, keepdims=True))


def test_prompt_local_classifier_and_ratios_share_one_vocabulary(shared_data):
    request = build_request(get_template("classify_task"), {"instruction": "Fix my loop."}, model="classifier")
    offered = _offered(request)
    # The prompt offers exactly the vocabulary, and the reply contract accepts exactly what it offers.
    assert offered == list(TASK_CATEGORIES) == list(TAPIR_TASK_RATIOS)
    assert request.contract["categories"] == offered
    assert all(TAPIR_TASK_RATIOS[c] > 0 for c in offered)
    assert {response_style(c) for c in ("Code Generation", "Code Debug")} == {"commented_code"}

    # The local classifier, trained on the mapped benchmark labels, predicts only categories the prompt
    # offers, and the LLM's answer in those words passes the contract.
    items = benchmark_instructions(shared_data)
    labels = [item.tapir_category for item in items]
    classifier = TaskClassifier(HashedWords()).fit([item.text for item in items], labels)
    assert set(classifier.head.classes) <= set(offered)
    predicted = [p.label for p in classifier.predict([item.text for item in items])]
    for label in set(predicted):
        assert check_reply(request.contract, f"Mostly code.\n<answer>{label}</answer>").parsed == {"category": label}

    # Resampled with the TAPIR ratios, the coding questions are drawn at their up-weighted share.
    total = 1200
    result = resample_by_task(predicted, ResamplingConfig(total=total, seed=1))
    drawn = Counter(predicted[i] for i in result.indices)
    assert result.unlisted == {}
    assert drawn["Code Generation"] == int(total * TAPIR_TASK_RATIOS["Code Generation"]) == 99
    for category in set(predicted):
        assert drawn[category] == int(total * TAPIR_TASK_RATIOS[category])


def test_the_prompt_refuses_categories_outside_the_vocabulary():
    template = get_template("classify_task")
    with pytest.raises(TemplateError, match="'Coding'"):
        build_request(template, {"instruction": "x", "categories": ["Coding", "Math"]}, model="m")
    part = build_request(template, {"instruction": "x", "categories": ["Math", "Code Debug"]}, model="m")
    assert _offered(part) == ["Math", "Code Debug"]
    assert not check_reply(part.contract, "<answer>Writing</answer>").valid


def test_every_benchmark_label_is_mapped_and_nothing_else_is_guessed(shared_data):
    items = benchmark_instructions(shared_data)
    assert {i.category for i in items if i.source == "mt-bench"} == MT_BENCH_LABELS == set(MT_BENCH_TO_TAPIR)
    assert {i.category for i in items if i.source == "vicuna"} == VICUNA_LABELS == set(VICUNA_TO_TAPIR)
    assert {i.tapir_category for i in items} <= set(TASK_CATEGORIES)
    assert to_task_category("coding") == to_task_category("Coding", source="vicuna") == "Code Generation"
    assert to_task_category("  code   debug ") == "Code Debug"
    assert to_task_category("stem", source="mt-bench") == "Others"
    for unknown in ("Coding Help", "Other", "STEM fields", ""):
        with pytest.raises(UnknownTaskLabel):
            to_task_category(unknown)


def test_replayed_categories_are_spoken_in_the_vocabulary():
    request = build_request(get_template("classify_task"), {"instruction": "x"}, model="labels")
    recorded = {1: "coding", 2: "Code Debug", 3: "stem", 4: "Poetry"}
    items = [OfflineItem(key, request, Reference(task_category=label)) for key, label in recorded.items()]
    replies = [check_reply(request.contract, r.content) for r in ReplayBackend().answer(items)]
    assert [r.parsed for r in replies[:3]] == [
        {"category": "Code Generation"},
        {"category": "Code Debug"},
        {"category": "Others"},
    ]
    # A category the vocabulary cannot place is replayed as recorded, and the contract rejects it.
    assert (replies[3].valid, replies[3].code) == (False, "classifier_unknown_category")
