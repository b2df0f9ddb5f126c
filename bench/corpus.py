"""Real instruction-length texts from ../shared/data, for the novelty benchmark.

The shared data holds about 30,000 distinct instructions, questions, premises and hypotheses; the sentences
of the teachers' long answers bring the count past the 58,000 that a 52,000-item pool plus 6,000 candidates
need. Every text is real; none is generated. Candidates are partly held-out real texts and partly light
edits of pool items, because generated instructions resemble their seeds and a filter that never rejects
anything would measure nothing.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\S+")


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _json(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def _instructions(data: Path) -> list[str]:
    texts: list[str] = []
    for row in _json(data / "LLaMA-Factory_alpaca_en_demo.json"):
        texts.append(f"{row['instruction']} {row['input']}".strip())
    texts += [row["instruction"] for row in _jsonl(data / "self-instruct_seed_tasks.jsonl")]
    texts += [row["instruction"] for row in _jsonl(data / "self-instruct_user_oriented_instructions.jsonl")]
    texts += [row["instruction"] for row in _json(data / "alpaca_eval_results_gpt4_model_outputs.json")]
    for name in ("FastChat_mt_bench_question.jsonl", "FastChat_vicuna_bench_question.jsonl"):
        texts += [turn for row in _jsonl(data / name) for turn in row["turns"]]
    for conversation in _json(data / "FastChat_data_dummy_conversation.json"):
        texts += [turn["value"] for turn in conversation["conversations"] if turn["from"] == "human"]
    sbs = data / "distilling_step_by_step"
    for split in ("train", "test"):
        texts += [row["question"] for row in _jsonl(sbs / "cqa" / f"cqa_{split}.json")]
        texts += [row["input"].replace("\n", " ") for row in _jsonl(sbs / "svamp" / f"svamp_{split}.json")]
    for name, splits in (("anli1", ("valid", "test")), ("esnli", ("valid", "test"))):
        for split in splits:
            for row in _jsonl(sbs / name / f"{name}_{split}.json"):
                texts += [row["premise"], row["hypothesis"]]
    return texts


def _answer_sentences(data: Path) -> list[str]:
    answers = [row["output"] for row in _json(data / "LLaMA-Factory_alpaca_en_demo.json")]
    for model in ("gpt4", "gpt4_1106_preview", "text_davinci_003", "alpaca-7b"):
        answers += [row["output"] for row in _json(data / f"alpaca_eval_results_{model}_model_outputs.json")]
    sentences = []
    for answer in answers:
        for piece in _SENTENCE_SPLIT.split(answer):
            words = len(_WORD.findall(piece))
            if 4 <= words <= 60:
                sentences.append(piece.strip())
    return sentences


def real_texts(data: Path) -> list[str]:
    """Distinct real texts, instructions first, in a fixed order."""
    seen: dict[str, None] = {}
    for text in _instructions(data) + _answer_sentences(data):
        text = " ".join(text.split())
        if text:
            seen.setdefault(text, None)
    return list(seen)


@dataclass(frozen=True)
class Workload:
    pool: list[str]
    candidates: list[str]


def _edit(text: str, rng: random.Random, vocabulary: list[str], rate: float) -> str:
    """Drop, replace or insert about `rate` of the words: a near-copy such as a generator might write."""
    words = text.split()
    out = []
    for word in words:
        roll = rng.random()
        if roll < rate / 3:
            continue
        if roll < 2 * rate / 3:
            out.append(rng.choice(vocabulary))
        elif roll < rate:
            out += [word, rng.choice(vocabulary)]
        else:
            out.append(word)
    return " ".join(out) or text


def novelty_workload(
    data: Path, pool_size: int, n_candidates: int, *, near_share: float = 0.3, seed: int = 0
) -> Workload:
    """A pool of `pool_size` real texts and candidates: held-out real texts plus edited pool items."""
    texts = real_texts(data)
    rng = random.Random(seed)
    rng.shuffle(texts)
    n_near = int(n_candidates * near_share)
    n_fresh = n_candidates - n_near
    if pool_size + n_fresh > len(texts):
        raise ValueError(f"only {len(texts)} real texts; asked for {pool_size} + {n_fresh}")
    pool = texts[:pool_size]
    fresh = texts[pool_size : pool_size + n_fresh]
    vocabulary = [word for text in fresh[:2000] for word in text.split()]
    near = [_edit(rng.choice(pool), rng, vocabulary, rng.uniform(0.05, 0.5)) for _ in range(n_near)]
    candidates = fresh + near
    rng.shuffle(candidates)
    return Workload(pool=pool, candidates=candidates)
