"""Retraining the local task classifier on an llm worker (the task `retrain_task_classifier`).

A queued ClassifierVersion is claimed, a head is fitted on the shipped labelled files plus every reviewer
example (workers.classify.retrain: fixed held-out split, cross-validation, then a head on everything), the
head is saved under MEDIA_ROOT/classifier/v<id>/ and the version is recorded as ready with its sha256 and
figures. Requests built from then on name that head in their cache key, and the offline runner answers
them with it (apps.llm.offline.local_classifier).
"""

import logging
from pathlib import Path

from django.conf import settings

from apps.llm.classifier_data import classifier_version_claim, classifier_version_fail, classifier_version_finish
from apps.llm.models import ClassifierExample, ClassifierVersion
from apps.llm.offline import classifier_embedder, classifier_training_files
from workers.classify.retrain import head_sha256, retrain_head
from workers.llm.offline.classifier import labelled_questions

log = logging.getLogger(__name__)
HEADS_DIR = "classifier"


def classifier_version_build(*, version_id: int) -> ClassifierVersion | None:
    """Run one queued retraining; None when it was not ours to run (not queued any more)."""
    version = classifier_version_claim(version_id=version_id)
    if version is None:
        return None
    try:
        shipped = labelled_questions(classifier_training_files())
        reviewed = list(
            ClassifierExample.objects.order_by("id").values_list("text", "category").iterator(chunk_size=2000)
        )
        embedder = classifier_embedder()
        result = retrain_head(embedder, shipped, reviewed)
        relative = Path(HEADS_DIR) / f"v{version.pk}" / "head"
        target = Path(settings.MEDIA_ROOT) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        result.head.save(target)
        version = classifier_version_finish(
            version_id=version.pk,
            path=str(relative),
            sha256=head_sha256(target),
            embedder=embedder.name,
            examples=result.examples,
            review_examples=result.review_examples,
            categories=result.categories,
            heldout_size=result.heldout_size,
            accuracy=result.accuracy,
            review_heldout_size=result.review_heldout_size,
            review_accuracy=result.review_accuracy,
            cv_accuracy=result.cv_accuracy,
        )
    except Exception as exc:
        # Recorded on the version (the page shows it), then raised so the worker's log has the traceback.
        classifier_version_fail(version_id=version.pk, error=f"{type(exc).__name__}: {exc}")
        raise
    log.info(
        "Local classifier version %s: %d examples (%d from reviewers), held-out accuracy %s on %d",
        version.pk,
        version.examples,
        version.review_examples,
        f"{version.accuracy:.3f}" if version.accuracy is not None else "n/a",
        version.heldout_size,
    )
    return version
