"""Retraining the local task classifier's head: shipped labelled questions plus reviewers' labels, and how
well the result does on items it never saw.

Reviewers' labels are the classifier's real data (issue 4: the 80 shipped questions leave 40-80% of a
dataset below the confidence floor). A reviewer's label for a text that the shipped files label too
replaces the shipped one. Every text is embedded once and the figures reuse the vectors:

- held-out accuracy: a fixed split, each text held out when the SHA-256 of the seed and the text falls in
  the first `share` of the hash space. A text keeps its side from one retraining to the next (new labels
  never move old ones across), so successive versions are measured on a growing set that never changes
  under them. A head fitted on the other side is scored on it, over all held-out items and over the
  reviewers' alone;
- cross-validated accuracy: stratified k-fold over every example (`cross_validated_accuracy`).

The head that is saved is fitted on every example; the two figures estimate how it does on new items.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workers.classify.task_classifier import ClassifierConfig, TaskHead, TextEncoder, cross_validated_accuracy

HELDOUT_SHARE = 0.2
FOLDS = 5


def in_heldout(text: str, *, share: float = HELDOUT_SHARE, seed: int = 0) -> bool:
    """Whether a text belongs to the fixed held-out split (the same answer on every run and machine)."""
    digest = hashlib.sha256(f"{seed}\n{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * 2**64


@dataclasses.dataclass(frozen=True)
class Retrained:
    head: TaskHead
    examples: int
    review_examples: int
    categories: int
    heldout_size: int
    accuracy: float | None  # None when the split leaves nothing to score or too little to fit on
    review_heldout_size: int
    review_accuracy: float | None
    cv_accuracy: float | None  # None when no category has `folds` examples


def merged_examples(
    shipped: Sequence[tuple[str, str]], reviewed: Sequence[tuple[str, str]]
) -> list[tuple[str, str, bool]]:
    """(text, label, from a reviewer) for each distinct text; a reviewer's label wins over a shipped one."""
    by_text: dict[str, tuple[str, bool]] = {}
    for text, label in shipped:
        by_text.setdefault(text, (label, False))
    for text, label in reviewed:
        by_text[text] = (label, True)
    return [(text, label, review) for text, (label, review) in by_text.items()]


def _heldout_scores(vectors, labels, heldout, from_review, config) -> tuple[float | None, float | None, int]:
    train = ~heldout
    if not heldout.any() or len(set(labels[train])) < 2:
        return None, None, int((heldout & from_review).sum())
    head = TaskHead(config).fit(vectors[train], list(labels[train]))
    predicted = np.array([p.label for p in head.predict(vectors[heldout])], dtype=object)
    correct = predicted == labels[heldout]
    review = from_review[heldout]
    review_accuracy = float(correct[review].mean()) if review.any() else None
    return float(correct.mean()), review_accuracy, int(review.sum())


def _cv_score(vectors, labels, config, folds: int, seed: int) -> float | None:
    counts = np.unique(labels, return_counts=True)[1]
    if len(counts) < 2 or counts.max() < folds:
        return None
    with warnings.catch_warnings():
        # A category reviewers introduced with fewer examples than folds: StratifiedKFold says so, then
        # puts them in what folds it can. The figure stays right; the warning says nothing new.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        accuracy, _ = cross_validated_accuracy(vectors, list(labels), folds=folds, seed=seed, config=config)
    return accuracy


def retrain_head(
    encoder: TextEncoder,
    shipped: Sequence[tuple[str, str]],
    reviewed: Sequence[tuple[str, str]],
    *,
    config: ClassifierConfig | None = None,
    share: float = HELDOUT_SHARE,
    folds: int = FOLDS,
    seed: int = 0,
) -> Retrained:
    rows = merged_examples(shipped, reviewed)
    if len({label for _, label, _ in rows}) < 2:
        raise ValueError(f"the classifier needs labelled tasks of at least two categories; it has {len(rows)} tasks")
    texts = [text for text, _, _ in rows]
    labels = np.array([label for _, label, _ in rows], dtype=object)
    from_review = np.array([review for _, _, review in rows], dtype=bool)
    vectors = np.asarray(encoder.encode(texts), dtype=np.float64)
    heldout = np.array([in_heldout(text, share=share, seed=seed) for text in texts], dtype=bool)
    accuracy, review_accuracy, review_heldout = _heldout_scores(vectors, labels, heldout, from_review, config)
    head = TaskHead(config).fit(vectors, list(labels))
    return Retrained(
        head=head,
        examples=len(rows),
        review_examples=int(from_review.sum()),
        categories=len(head.classes),
        heldout_size=int(heldout.sum()),
        accuracy=accuracy,
        review_heldout_size=review_heldout,
        review_accuracy=review_accuracy,
        cv_accuracy=_cv_score(vectors, labels, config, folds, seed),
    )


def head_sha256(path: Path) -> str:
    """SHA-256 of a saved head (TaskHead.save): its .npz file's bytes, then its .json file's."""
    digest = hashlib.sha256()
    for suffix in (".npz", ".json"):
        digest.update(path.with_suffix(suffix).read_bytes())
    return digest.hexdigest()
