"""Held-out accuracy of the task classifier on the MT-Bench and Vicuna-80 categories.

    python bench/classifier.py

Stratified k-fold cross-validation (every question predicted by a head that never saw it), three shuffles;
plus a cross-benchmark check: trained on MT-Bench, tested on the Vicuna questions whose TAPIR category
MT-Bench also has.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workers.classify.embedding import Encoder  # noqa: E402
from workers.classify.labelled import benchmark_instructions  # noqa: E402
from workers.classify.task_classifier import TaskHead, cross_validated_accuracy  # noqa: E402


def main() -> None:
    data = Path(os.environ.get("RETORT_SHARED_DATA", REPO.parent / "shared" / "data"))
    start = time.perf_counter()
    encoder = Encoder()
    items = benchmark_instructions(data)
    embeddings = encoder.encode([item.text for item in items])
    print(f"encoded {len(items)} questions with {encoder.name} in {time.perf_counter() - start:.1f} s")
    mt = np.array([item.source == "mt-bench" for item in items])
    cases = [
        ("MT-Bench, its 8 categories, 5-fold", mt, lambda item: item.category, 5, True),
        ("Vicuna-80, its 9 categories, 3-fold (math has 3)", ~mt, lambda item: item.category, 3, True),
        (
            "both, mapped to TAPIR categories (9), 5-fold",
            np.ones(len(items), bool),
            lambda i: i.tapir_category,
            5,
            False,
        ),
    ]
    for title, chosen, label_of, folds, free_labels in cases:
        labels = [label_of(item) for item, keep in zip(items, chosen, strict=True) if keep]
        runs = []
        for seed in (0, 1, 2):
            accuracy, predictions = cross_validated_accuracy(
                embeddings[chosen], labels, folds=folds, seed=seed, free_labels=free_labels
            )
            runs.append(accuracy)
            if seed == 0:
                sure = [p.label == y for p, y in zip(predictions, labels, strict=True) if not p.needs_review]
                flagged = len(labels) - len(sure)
        print(
            f"{title}: accuracy {np.mean(runs):.3f} (seeds {', '.join(f'{a:.3f}' for a in runs)}); "
            f"seed 0: {flagged} of {len(labels)} flagged below 0.5 confidence, "
            f"accuracy on the rest {np.mean(sure):.3f}"
        )
    shared = {item.tapir_category for item in items if item.source == "mt-bench"}
    head = TaskHead().fit(embeddings[mt], [item.tapir_category for item in np.array(items)[mt]])
    test = [k for k, item in enumerate(items) if item.source == "vicuna" and item.tapir_category in shared]
    predictions = head.predict(embeddings[test])
    hits = np.mean([p.label == items[k].tapir_category for p, k in zip(predictions, test, strict=True)])
    print(f"trained on MT-Bench, tested on {len(test)} Vicuna questions (TAPIR categories): accuracy {hits:.3f}")


if __name__ == "__main__":
    main()
