"""A fast local task classifier: embedding -> multinomial logistic regression -> label and confidence.

Confidence is the head's probability for its top label. Below `min_confidence` a prediction is marked for
review, so the workflow can send it on to the LLM classifier or a person instead of trusting it. The head
is saved as plain arrays (npz + JSON), never as a pickle, so loading a saved classifier runs no code.

A head speaks the task vocabulary (workers.algorithms.task_vocabulary): it trains only on its categories,
so every label it predicts has a resampling ratio and a response style. `free_labels=True` lifts that, for
measuring accuracy on a benchmark's own categories; such a head is not for labelling instructions.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from workers.algorithms.config import AlgorithmConfig, check_int, check_range
from workers.algorithms.task_vocabulary import check_task_categories


class TextEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClassifierConfig(AlgorithmConfig):
    """C: inverse L2 strength of the head; balanced class weights, since task labels are skewed."""

    c: float = 10.0
    max_iter: int = 2000
    balanced: bool = True
    min_confidence: float = 0.5

    def __post_init__(self) -> None:
        check_range(self, "c", self.c, 1e-6, 1e6)
        check_int(self, "max_iter", self.max_iter, 1)
        check_range(self, "min_confidence", self.min_confidence, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class TaskPrediction:
    label: str
    confidence: float
    needs_review: bool
    alternatives: tuple[tuple[str, float], ...]  # the next labels by probability (up to two)


class TaskHead:
    """The logistic-regression head over embeddings; usable without an encoder (e.g. for evaluation)."""

    def __init__(self, config: ClassifierConfig | None = None, *, free_labels: bool = False) -> None:
        self.config = config or ClassifierConfig()
        self.free_labels = free_labels
        self.classes: np.ndarray = np.array([], dtype=object)
        self.coef: np.ndarray = np.zeros((0, 0))
        self.intercept: np.ndarray = np.zeros(0)

    def fit(self, embeddings: np.ndarray, labels: Sequence[str]) -> TaskHead:
        if len(set(labels)) < 2:
            raise ValueError("need at least two categories to train a classifier")
        if not self.free_labels:
            check_task_categories(labels, "training labels")
        model = LogisticRegression(
            C=self.config.c,
            max_iter=self.config.max_iter,
            class_weight="balanced" if self.config.balanced else None,
        )
        model.fit(np.asarray(embeddings, dtype=np.float64), list(labels))
        self.classes = np.asarray(model.classes_, dtype=object)
        self.coef = model.coef_
        self.intercept = model.intercept_
        return self

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        logits = np.asarray(embeddings, dtype=np.float64) @ self.coef.T + self.intercept
        if self.coef.shape[0] == 1:  # sklearn's binary head: one logit for classes[1]
            logits = np.column_stack([np.zeros(len(logits)), logits[:, 0]])
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def predict(self, embeddings: np.ndarray) -> list[TaskPrediction]:
        out = []
        for row in self.probabilities(embeddings):
            order = np.argsort(-row, kind="stable")
            best = float(row[order[0]])
            others = tuple((str(self.classes[i]), float(row[i])) for i in order[1:3])
            out.append(TaskPrediction(str(self.classes[order[0]]), best, best < self.config.min_confidence, others))
        return out

    def save(self, path: Path) -> None:
        """Arrays in <path>.npz and the labels and config in <path>.json."""
        np.savez(path.with_suffix(".npz"), coef=self.coef, intercept=self.intercept)
        meta = {
            "classes": [str(c) for c in self.classes],
            "config": self.config.to_dict(),
            "free_labels": self.free_labels,
        }
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TaskHead:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        head = cls(ClassifierConfig.from_dict(meta["config"]), free_labels=bool(meta.get("free_labels", False)))
        if not head.free_labels:
            check_task_categories(meta["classes"], "saved labels")  # a head saved before the vocabulary changed
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as arrays:
            head.coef = arrays["coef"]
            head.intercept = arrays["intercept"]
        head.classes = np.asarray(meta["classes"], dtype=object)
        return head


class TaskClassifier:
    """Encoder + head: train from labelled instructions, then label new ones with a confidence."""

    def __init__(self, encoder: TextEncoder, head: TaskHead | None = None) -> None:
        self.encoder = encoder
        self.head = head or TaskHead()

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> TaskClassifier:
        self.head.fit(self.encoder.encode(texts), labels)
        return self

    def predict(self, texts: Sequence[str]) -> list[TaskPrediction]:
        return self.head.predict(self.encoder.encode(texts))


def cross_validated_accuracy(
    embeddings: np.ndarray,
    labels: Sequence[str],
    *,
    folds: int = 5,
    seed: int = 0,
    config: ClassifierConfig | None = None,
    free_labels: bool = False,
) -> tuple[float, list[TaskPrediction]]:
    """Held-out accuracy by stratified k-fold: every item is predicted by a head that never saw it."""
    labels_array = np.asarray(labels, dtype=object)
    predictions: list[TaskPrediction | None] = [None] * len(labels_array)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(embeddings, labels_array):
        head = TaskHead(config, free_labels=free_labels).fit(embeddings[train], list(labels_array[train]))
        for index, prediction in zip(test, head.predict(embeddings[test]), strict=True):
            predictions[index] = prediction
    done = [p for p in predictions if p is not None]
    correct = sum(p.label == label for p, label in zip(done, labels_array, strict=True))
    return correct / len(done), done
