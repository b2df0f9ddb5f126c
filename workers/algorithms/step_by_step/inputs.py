"""Step-by-step inputs and training pairs, in the formats of the reference code (google-research).

Each example becomes two tasks for the student: `predict: <input>` -> label and `explain: <input>` ->
rationale. Inputs are built as the reference code builds them:

- CommonsenseQA: the question, then "Answer Choices:" and one "(a) choice" line per option;
- NLI (e-SNLI, ANLI): premise and hypothesis joined by the student tokenizer's end-of-sequence token
  ("</s>" for the reference's T5; pass your tokenizer's);
- SVAMP: the body, a newline, then the question.
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Sequence
from typing import Literal

PREDICT_PREFIX = "predict: "
EXPLAIN_PREFIX = "explain: "
NLI_LABELS = ("entailment", "neutral", "contradiction")  # label ids 0, 1, 2 in e-SNLI and ANLI


def cqa_input(question: str, choices: Sequence[str]) -> str:
    if not 0 < len(choices) <= 26:
        raise ValueError("need between 1 and 26 answer choices")
    lines = [f"({letter}) {choice}" for letter, choice in zip(string.ascii_lowercase, choices, strict=False)]
    return "\n".join([question, "Answer Choices:", *lines])


def nli_input(premise: str, hypothesis: str, separator: str = "</s>") -> str:
    return f"{premise}{separator}{hypothesis}"


def svamp_input(body: str, question: str) -> str:
    return f"{body}\n{question}"


@dataclasses.dataclass(frozen=True)
class TaskPair:
    task: Literal["predict", "explain"]
    source: str  # encoder input (seq2seq) or prompt (causal: the loss skips it)
    target: str


def build_pairs(
    input_text: str,
    label: str,
    rationale: str,
    *,
    style: Literal["seq2seq", "causal"] = "seq2seq",
    causal_separator: str = "\n",
) -> tuple[TaskPair, TaskPair]:
    """The (predict, explain) pair of one example.

    For a causal student the prompt ends with `causal_separator`, so the answer starts on a fresh line
    and the prompt/target split is unambiguous for masking the loss.
    """
    end = causal_separator if style == "causal" else ""
    if style not in ("seq2seq", "causal"):
        raise ValueError("style must be 'seq2seq' or 'causal'")
    return (
        TaskPair("predict", f"{PREDICT_PREFIX}{input_text}{end}", label),
        TaskPair("explain", f"{EXPLAIN_PREFIX}{input_text}{end}", rationale),
    )


def multitask_loss(label_loss: float, rationale_loss: float, alpha: float = 0.5) -> float:
    """The step-by-step objective: alpha * L_label + (1 - alpha) * L_rationale (reference: alpha = 0.5)."""
    return alpha * label_loss + (1.0 - alpha) * rationale_loss
