"""Distilling step-by-step (Hsieh et al., 2023): inputs, rationale parsing, label checks, training pairs."""

from workers.algorithms.step_by_step.arithmetic import ArithmeticSyntaxError, evaluate
from workers.algorithms.step_by_step.examples import (
    BuildReport,
    StepByStepConfig,
    StepByStepExample,
    build_examples,
    gold_example,
    labels_agree,
    normalize_label,
)
from workers.algorithms.step_by_step.inputs import (
    TaskPair,
    build_pairs,
    cqa_input,
    multitask_loss,
    nli_input,
    svamp_input,
)
from workers.algorithms.step_by_step.rationales import (
    DATASETS,
    ParsedRationale,
    cut_completion,
    parse_rationale,
)

__all__ = [
    "DATASETS",
    "ArithmeticSyntaxError",
    "BuildReport",
    "ParsedRationale",
    "StepByStepConfig",
    "StepByStepExample",
    "TaskPair",
    "build_examples",
    "build_pairs",
    "cqa_input",
    "cut_completion",
    "evaluate",
    "gold_example",
    "labels_agree",
    "multitask_loss",
    "nli_input",
    "normalize_label",
    "parse_rationale",
    "svamp_input",
]
