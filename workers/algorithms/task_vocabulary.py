"""The one task vocabulary: TAPIR's task categories, and how other label sets map onto them.

Everything that names a task type speaks this vocabulary: the LLM classifier's prompt lists it, the local
classifier trains on it, the resampling ratios are keyed by it and the per-task response style is chosen
from it. The 32 categories are those of the TAPIR-derived sampler in Alibaba EasyDistill (31 named ones plus
Others), whose ratios live in workers.algorithms.resampling.

A label from elsewhere (a benchmark's own categories, an imported dataset's `category` column, an LLM's
reply) becomes a category only through `to_task_category`: a category name in any case, or a label the
mapping below names. Anything else raises UnknownTaskLabel, so no item quietly falls out of a resampled set
because its label matched no ratio.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

TASK_CATEGORIES: tuple[str, ...] = (
    "Math", "Reasoning", "Code Generation", "Code Debug", "Others",
    "Writing", "Computer Science", "Complex Format", "Common-Sense", "Counterfactual",
    "Multilingual", "Roleplay", "Biology", "Technology", "Ethics", "Sport", "Law", "Medicine",
    "Literature", "Entertainment", "Art", "Music", "Toxicity", "Economy", "Physics", "History",
    "Chemistry", "Philosophy", "Health", "Ecology", "Grammar", "Paraphrase",
)  # fmt: skip
OTHERS = "Others"
_CATEGORY_SET = frozenset(TASK_CATEGORIES)

# MT-Bench's 8 and Vicuna-80's 9 categories (FastChat question files). The mapping is ours: categories that
# span many TAPIR ones (stem, humanities, generic, knowledge) go to Others; extraction asks for structured
# output, hence Complex Format; fermi estimates are reasoning; the benchmarks' coding questions ask for new
# code, hence Code Generation.
MT_BENCH_TO_TAPIR: Mapping[str, str] = MappingProxyType(
    {
        "writing": "Writing",
        "roleplay": "Roleplay",
        "reasoning": "Reasoning",
        "math": "Math",
        "coding": "Code Generation",
        "extraction": "Complex Format",
        "stem": "Others",
        "humanities": "Others",
    }
)
VICUNA_TO_TAPIR: Mapping[str, str] = MappingProxyType(
    {
        "generic": "Others",
        "knowledge": "Others",
        "roleplay": "Roleplay",
        "common-sense": "Common-Sense",
        "fermi": "Reasoning",
        "counterfactual": "Counterfactual",
        "coding": "Code Generation",
        "math": "Math",
        "writing": "Writing",
    }
)
BENCHMARK_MAPPINGS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"mt-bench": MT_BENCH_TO_TAPIR, "vicuna": VICUNA_TO_TAPIR}
)

# TAPIR's per-task response style: step-by-step reasoning for math and reasoning, commented code for code,
# a detailed, structured answer for the rest.
CHAIN_OF_THOUGHT, COMMENTED_CODE, DETAILED = "chain_of_thought", "commented_code", "detailed"
_STYLES: Mapping[str, str] = MappingProxyType(
    {
        "Math": CHAIN_OF_THOUGHT,
        "Reasoning": CHAIN_OF_THOUGHT,
        "Code Generation": COMMENTED_CODE,
        "Code Debug": COMMENTED_CODE,
    }
)


class UnknownTaskLabel(ValueError):
    """A task label that is neither a category of the vocabulary nor mapped onto one."""


def _key(label: str) -> str:
    return " ".join(str(label).split()).lower()


def _aliases() -> dict[str, str]:
    aliases = {_key(c): c for c in TASK_CATEGORIES}
    for source, mapping in BENCHMARK_MAPPINGS.items():
        for label, category in mapping.items():
            # One table for all sources needs each shared label (coding, math, ...) to agree across them.
            if aliases.setdefault(_key(label), category) != category:
                raise ValueError(f"{source} label {label!r} maps to two categories")
    return aliases


_ALIASES: Mapping[str, str] = MappingProxyType(_aliases())


def is_task_category(label: str) -> bool:
    """True only for a category spelled exactly as the vocabulary spells it."""
    return label in _CATEGORY_SET


def to_task_category(label: str, *, source: str | None = None) -> str:
    """The vocabulary's category for `label`: a category in any case or spacing, or a mapped benchmark label
    (`source` = "mt-bench" or "vicuna" restricts the lookup to that benchmark's table)."""
    key = _key(label)
    if source is not None:
        if source not in BENCHMARK_MAPPINGS:
            raise ValueError(f"unknown label source {source!r}; expected one of {', '.join(BENCHMARK_MAPPINGS)}")
        mapping = BENCHMARK_MAPPINGS[source]
        if key in mapping:
            return mapping[key]
    if key in _ALIASES:
        return _ALIASES[key]
    raise UnknownTaskLabel(
        f"{label!r} is not a task category and no mapping names it; use one of: {', '.join(TASK_CATEGORIES)}"
    )


def check_task_categories(labels: Iterable[str], what: str = "labels") -> None:
    """Raise UnknownTaskLabel naming every label that is not a category spelled exactly."""
    unknown = sorted({label for label in labels if label not in _CATEGORY_SET}, key=str)
    if unknown:
        raise UnknownTaskLabel(
            f"{what} outside the task vocabulary: {', '.join(map(repr, unknown))}; map them with to_task_category first"
        )


def response_style(category: str) -> str:
    """The response style TAPIR gives a category (chain_of_thought, commented_code or detailed)."""
    return _STYLES.get(to_task_category(category), DETAILED)
