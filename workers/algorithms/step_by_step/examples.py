"""Assemble step-by-step training examples: input, label, rationale, and the teacher-label check.

The teacher's label is checked against the gold label: SVAMP by evaluating both equations (with the
arithmetic evaluator, never eval()), the others by normalised exact match. The reference code trains on the
gold label with the teacher's rationale (`label_source="gold"`); `drop_mismatched` also drops examples whose
teacher label disagrees with the gold one, so no rationale argues for a wrong answer. Examples without a
parsable rationale are always dropped: there is nothing to explain.
"""

from __future__ import annotations

import dataclasses
import math
import re
import string
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from workers.algorithms.config import AlgorithmConfig, ConfigError, check_range
from workers.algorithms.step_by_step.arithmetic import ArithmeticSyntaxError, evaluate
from workers.algorithms.step_by_step.inputs import NLI_LABELS, TaskPair, build_pairs, cqa_input, nli_input
from workers.algorithms.step_by_step.rationales import DATASETS, Dataset, ParsedRationale, parse_rationale

_SPACES = re.compile(r"\s+")
_EDGE_PUNCTUATION = string.punctuation + " "


@dataclasses.dataclass(frozen=True, kw_only=True)
class StepByStepConfig(AlgorithmConfig):
    """Reference defaults: gold labels, alpha = 0.5 (the trainer's loss weight), T5's "</s>" for NLI."""

    label_source: Literal["gold", "teacher"] = "gold"
    drop_mismatched: bool = False
    style: Literal["seq2seq", "causal"] = "seq2seq"
    nli_separator: str = "</s>"
    causal_separator: str = "\n"
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if self.label_source not in ("gold", "teacher"):
            raise ConfigError("StepByStepConfig.label_source must be 'gold' or 'teacher'")
        if self.style not in ("seq2seq", "causal"):
            raise ConfigError("StepByStepConfig.style must be 'seq2seq' or 'causal'")
        check_range(self, "alpha", self.alpha, 0.0, 1.0)


def normalize_label(text: str) -> str:
    """Lower case, single spaces, no punctuation at either end: "Wooded area." -> "wooded area"."""
    return _SPACES.sub(" ", text.lower()).strip(_EDGE_PUNCTUATION)


def equations_agree(teacher: str, gold: str, *, rel_tol: float = 1e-6) -> bool:
    """Both parse as arithmetic and have the same value (to a relative 1e-6, for float division)."""
    try:
        return math.isclose(evaluate(teacher), evaluate(gold), rel_tol=rel_tol, abs_tol=1e-9)
    except ArithmeticSyntaxError:
        return False


def labels_agree(dataset: Dataset, teacher: str | None, gold: str) -> bool:
    if teacher is None:
        return False
    if dataset == "svamp":
        return equations_agree(teacher, gold)
    return normalize_label(teacher) == normalize_label(gold)


@dataclasses.dataclass(frozen=True)
class GoldExample:
    input: str
    label: str
    choices: tuple[str, ...] = ()  # cqa only: lets a teacher's choice letter name its answer


def gold_example(dataset: Dataset, record: Mapping[str, Any], nli_separator: str = "</s>") -> GoldExample:
    """Input and gold label from a record in the reference code's JSON layout."""
    if dataset == "cqa":
        choices = tuple(record["choices"])
        return GoldExample(cqa_input(record["question"], choices), record["answer"], choices)
    if dataset == "svamp":
        if "input" in record:
            return GoldExample(record["input"], record["label"])
        return GoldExample(f"{record['Body']}\n{record['Question']}", record["Equation"])
    if dataset in ("anli", "esnli"):
        label = record["label"]
        name = NLI_LABELS[label] if isinstance(label, int) else str(label)
        return GoldExample(nli_input(record["premise"], record["hypothesis"], nli_separator), name)
    if dataset == "generic":
        return GoldExample(record["input"], record["label"])
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")


def teacher_label(parsed: ParsedRationale, gold: GoldExample) -> str | None:
    """The teacher's answer; for cqa, the choice its letter names (the text after the letter may be cut
    short or paraphrased), else that text."""
    if parsed.choice is not None and gold.choices:
        index = ord(parsed.choice) - ord("a")
        if 0 <= index < len(gold.choices):
            return gold.choices[index]
    return parsed.label


@dataclasses.dataclass(frozen=True)
class StepByStepExample:
    input: str
    label: str
    rationale: str
    teacher_label: str | None
    agrees: bool
    pairs: tuple[TaskPair, TaskPair]


@dataclasses.dataclass(frozen=True)
class BuildReport:
    total: int
    parsed: int
    agreed: int  # parsed and the teacher's label equals the gold label
    kept: int
    problems: dict[str, int]  # unparsed completions by reason

    @property
    def parse_rate(self) -> float:
        return self.parsed / self.total if self.total else 0.0

    @property
    def agreement(self) -> float:
        """Label agreement among parsed completions."""
        return self.agreed / self.parsed if self.parsed else 0.0


def build_examples(
    dataset: Dataset,
    records: Sequence[Mapping[str, Any]],
    completions: Sequence[str],
    config: StepByStepConfig | None = None,
) -> tuple[list[StepByStepExample], BuildReport]:
    """Training examples from gold records and the teacher's completions (one per record, same order)."""
    config = config or StepByStepConfig()
    if len(records) != len(completions):
        raise ValueError(f"{len(records)} records but {len(completions)} completions")
    examples: list[StepByStepExample] = []
    parsed_count = agreed = 0
    problems: dict[str, int] = {}
    for record, completion in zip(records, completions, strict=True):
        gold = gold_example(dataset, record, config.nli_separator)
        parsed = parse_rationale(dataset, completion)
        if not parsed.ok or parsed.rationale is None:
            reason = parsed.problem or "empty rationale"
            problems[reason] = problems.get(reason, 0) + 1
            continue
        parsed_count += 1
        answer = teacher_label(parsed, gold)
        agrees = labels_agree(dataset, answer, gold.label)
        agreed += agrees
        if config.drop_mismatched and not agrees:
            continue
        label = gold.label if config.label_source == "gold" or answer is None else answer
        pairs = build_pairs(
            gold.input, label, parsed.rationale, style=config.style, causal_separator=config.causal_separator
        )
        examples.append(StepByStepExample(gold.input, label, parsed.rationale, answer, agrees, pairs))
    report = BuildReport(len(records), parsed_count, agreed, len(examples), problems)
    return examples, report
