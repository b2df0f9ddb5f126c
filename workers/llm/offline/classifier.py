"""The local task classifier as an offline backend: MiniLM embeddings and a logistic-regression head
(workers.classify.TaskHead) trained on labelled questions, answering classifier requests in the
classifier contract with its confidence: `<answer>Category</answer>` and `<confidence>p</confidence>`.

The head is trained from JSON Lines files of labelled questions: the demo format (`instruction`,
optional `input`, `task_category` in the task vocabulary, as demo_data/mt_bench_questions.jsonl) or
FastChat's question files (`turns`, `category`, mapped with `to_task_category`). The encoder is injected
(the offline runner's MiniLM embedder), so this module loads no model itself.
"""

import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from workers.algorithms.task_vocabulary import to_task_category
from workers.llm.offline.backends import OfflineItem, _failed, _ok
from workers.llm.prompts import task_text
from workers.llm.types import CallResult

NOT_A_CLASSIFICATION = "The local task classifier only labels task types."
NO_OFFERED_CATEGORY = "The local task classifier knows none of the categories the request offers."


def labelled_questions(paths: Iterable[Path]) -> list[tuple[str, str]]:
    """(task text, task category) from labelled question files, in file order."""
    out = []
    for path in paths:
        source = "mt-bench" if "mt_bench" in path.name else "vicuna" if "vicuna" in path.name else None
        with Path(path).open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                row = json.loads(line)
                if "turns" in row:  # FastChat's question file: the benchmark's own category
                    out.append((row["turns"][0], to_task_category(row["category"], source=source)))
                elif row.get("task_category"):
                    text = task_text(row["instruction"], row.get("input") or "")
                    out.append((text, to_task_category(row["task_category"])))
    return out


def train_head(encoder, examples: Sequence[tuple[str, str]], config=None):
    """A TaskHead fitted to the examples' embeddings."""
    from workers.classify.task_classifier import TaskHead

    texts = [text for text, _ in examples]
    return TaskHead(config).fit(encoder.encode(texts), [label for _, label in examples])


class LocalTaskClassifier:
    """Labels each request's task (its `instruction` and `input`) with the head's most probable category
    among those the request offers; the confidence is that category's probability renormalised over the
    offered ones, so offering a part of the vocabulary never inflates a label the head does not know."""

    kind = "offline_local_classifier"

    def __init__(self, encoder, head, *, name: str = "local task classifier"):
        self.encoder, self.head, self.name = encoder, head, name
        self.classes = [str(c) for c in head.classes]

    def answer(self, items: Sequence[OfflineItem]) -> list[CallResult]:
        results: dict[int, CallResult] = {}
        usable = []
        for item in items:
            if item.request.contract.get("kind") != "classifier":
                results[item.key] = _failed(item, NOT_A_CLASSIFICATION, fatal=True)
            else:
                usable.append(item)
        if usable:
            started = time.perf_counter()
            texts = [
                str(item.request.vars.get("task") or "")
                or task_text(str(item.request.vars.get("instruction", "")), str(item.request.vars.get("input", "")))
                for item in usable
            ]
            probabilities = self.head.probabilities(self.encoder.encode(texts))
            for item, row in zip(usable, probabilities, strict=True):
                results[item.key] = self._reply(item, row, started)
        return [results[item.key] for item in items]

    def _reply(self, item: OfflineItem, row: np.ndarray, started: float) -> CallResult:
        offered = item.request.contract.get("categories")
        allowed = set(offered) if offered else set(self.classes)
        columns = [k for k, label in enumerate(self.classes) if label in allowed]
        if not columns:
            return _failed(item, NO_OFFERED_CATEGORY)
        mass = row[columns]
        mass = mass / mass.sum()
        order = np.argsort(-mass, kind="stable")
        ranked = [(self.classes[columns[k]], float(mass[k])) for k in order]
        label, confidence = ranked[0]
        others = ", ".join(f"{name} {p:.3f}" for name, p in ranked[1:3])
        content = (
            f"Local task classifier ({self.name}): {label} with probability {confidence:.3f}"
            + (f"; next: {others}" if others else "")
            + f".\n<answer>{label}</answer>\n<confidence>{confidence:.4f}</confidence>"
        )
        return _ok(item, content, started)
