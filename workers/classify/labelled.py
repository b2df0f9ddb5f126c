"""Labelled instructions for training and checking the classifier: MT-Bench and Vicuna-80 categories.

Both benchmarks label each question with a category of their own (MT-Bench 8, Vicuna 9). To train a
classifier over the TAPIR task categories, the mapping below sends each benchmark category to the TAPIR
category it matches; categories that span many TAPIR ones (MT-Bench's stem and humanities, Vicuna's generic
and knowledge) go to Others. The mapping is ours.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

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


@dataclasses.dataclass(frozen=True)
class LabelledInstruction:
    text: str
    category: str  # the benchmark's own category
    source: str  # "mt-bench" or "vicuna"

    @property
    def tapir_category(self) -> str:
        mapping = MT_BENCH_TO_TAPIR if self.source == "mt-bench" else VICUNA_TO_TAPIR
        return mapping[self.category]


def benchmark_instructions(data_dir: Path) -> list[LabelledInstruction]:
    """The first turn of every MT-Bench and Vicuna-80 question with its category (160 in all)."""
    out = []
    for name, source in (
        ("FastChat_mt_bench_question.jsonl", "mt-bench"),
        ("FastChat_vicuna_bench_question.jsonl", "vicuna"),
    ):
        with (data_dir / name).open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    row = json.loads(line)
                    out.append(LabelledInstruction(row["turns"][0], row["category"], source))
    return out
