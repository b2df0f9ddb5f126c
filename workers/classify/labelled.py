"""Labelled instructions for training and checking the classifier: MT-Bench and Vicuna-80 categories.

Both benchmarks label each question with a category of their own (MT-Bench 8, Vicuna 9). To train a
classifier over the TAPIR task categories, each benchmark category is mapped onto the task vocabulary by the
tables in workers.algorithms.task_vocabulary (re-exported here).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from workers.algorithms.task_vocabulary import MT_BENCH_TO_TAPIR, VICUNA_TO_TAPIR, to_task_category

__all__ = ["MT_BENCH_TO_TAPIR", "VICUNA_TO_TAPIR", "LabelledInstruction", "benchmark_instructions"]


@dataclasses.dataclass(frozen=True)
class LabelledInstruction:
    text: str
    category: str  # the benchmark's own category
    source: str  # "mt-bench" or "vicuna"

    @property
    def tapir_category(self) -> str:
        return to_task_category(self.category, source=self.source)


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
