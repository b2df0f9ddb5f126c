from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from apps.core.models import TimeStampedModel


class ReviewTask(TimeStampedModel):
    """One item in a review queue: a judge's verdict, a style rewrite, a generated instruction, a
    rationale or an unparsable reply, waiting for a person."""

    class Kind(models.TextChoices):
        VERDICT = "verdict", "hard/easy verdict"
        REWRITE = "rewrite", "style rewrite"
        GENERATED = "generated", "generated instruction"
        RATIONALE = "rationale", "rationale"
        INVALID_REPLY = "invalid_reply", "unparsable reply"
        TASK_LABEL = "task_label", "task category"
        ANSWER = "answer", "teacher answer"

    class Status(models.TextChoices):
        OPEN = "open", "open"
        CLAIMED = "claimed", "claimed"
        DONE = "done", "done"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    round = models.ForeignKey(
        "experiments.Round", null=True, blank=True, on_delete=models.CASCADE, related_name="review_tasks"
    )
    subject_type = models.ForeignKey(ContentType, on_delete=models.CASCADE)
    subject_id = models.PositiveBigIntegerField()
    subject = GenericForeignKey("subject_type", "subject_id")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    priority = models.IntegerField(default=0, help_text="Higher first; contested verdicts go first.")
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="claimed_reviews"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-priority", "id"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "subject_type", "subject_id"], name="review_task_once_per_subject"),
        ]
        indexes = [
            # The claim query: next open (or lease-expired) task of a kind in a round, highest priority.
            models.Index(fields=["round", "kind", "status", "-priority", "id"], name="review_task_queue"),
            models.Index(fields=["claimed_by", "status"], name="review_task_claimant"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Review verdicts are append-only; add a new verdict instead.")

    def delete(self):
        raise TypeError("Review verdicts are append-only and cannot be deleted.")


class ReviewVerdict(models.Model):
    """A reviewer's decision on a task. Append-only: a change of mind is a new verdict."""

    class Decision(models.TextChoices):
        ACCEPT = "accept", "accept"
        REJECT = "reject", "reject"
        EDIT = "edit", "accept with edits"
        FLIP = "flip", "flip the verdict"

    task = models.ForeignKey(ReviewTask, on_delete=models.PROTECT, related_name="verdicts")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_verdicts")
    decision = models.CharField(max_length=8, choices=Decision.choices)
    edited_text = models.TextField(blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["task", "id"], name="review_verdict_task")]

    def __str__(self):
        return f"{self.decision} by {self.reviewer_id} on task {self.task_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("Review verdicts are append-only; add a new verdict instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Review verdicts are append-only and cannot be deleted.")
