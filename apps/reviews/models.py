from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.models import TimeStampedModel
from apps.reviews import kinds

MAX_OVERLAP = 5


class ReviewTask(TimeStampedModel):
    """One item in a review queue: a judge's verdict, a style rewrite, a generated instruction, a
    rationale or an unparsable reply, waiting for `required_reviews` people.

    Reviewers hold it through assignments (one each, with a lease) and vote with verdicts; when the
    required votes agree the task is done and its resolution (decision, edited_text, note) is what the
    engine applies; when they disagree it waits in conflict for an operator."""

    Kind = kinds.Kind

    class Status(models.TextChoices):
        OPEN = "open", "open"
        CLAIMED = "claimed", "claimed"
        CONFLICT = "conflict", "reviewers disagree"
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
    required_reviews = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_OVERLAP)],
        help_text="How many reviewers must vote (the overlap); their votes must agree.",
    )
    # The resolution: what the votes agreed on, or what an operator settled a conflict with.
    decision = models.CharField(max_length=8, choices=kinds.Decision.choices, blank=True)
    edited_text = models.TextField(blank=True)
    note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="resolved_reviews"
    )

    class Meta:
        ordering = ["-priority", "id"]
        constraints = [
            # The same subject reviewed in two experiments' rounds is two tasks; a task outside any round
            # (an unparsable reply nobody's round asked for) is one per subject.
            models.UniqueConstraint(
                fields=["round", "kind", "subject_type", "subject_id"],
                condition=models.Q(round__isnull=False),
                name="review_task_once_per_round",
            ),
            models.UniqueConstraint(
                fields=["kind", "subject_type", "subject_id"],
                condition=models.Q(round__isnull=True),
                name="review_task_once_per_subject",
            ),
            models.CheckConstraint(
                condition=models.Q(required_reviews__gte=1, required_reviews__lte=MAX_OVERLAP),
                name="review_task_overlap_range",
            ),
        ]
        indexes = [
            # Gate counts and reads: a round's tasks of a kind by status.
            models.Index(fields=["round", "kind", "status", "-priority", "id"], name="review_task_queue"),
            # The claim query: the next claimable task of a kind (in a round), highest priority first.
            models.Index(
                fields=["kind", "round", "-priority", "id"],
                condition=models.Q(status__in=["open", "claimed"]),
                name="review_task_claimable",
            ),
            models.Index(
                fields=["kind", "-priority", "id"],
                condition=models.Q(status__in=["open", "claimed"]),
                name="review_task_claimable_kind",
            ),
            # The table view in queue order whatever the status: a round's page, and every round's.
            # Without them a page sorts all of its round's (or kind's) tasks to show 50.
            models.Index(fields=["round", "kind", "-priority", "id"], name="review_task_round_order"),
            models.Index(fields=["kind", "-priority", "id"], name="review_task_kind_order"),
            # Every round's tasks of a status: the queue pages' counts (a bounded read per status) and a
            # table filtered by status, in queue order.
            models.Index(fields=["kind", "status", "-priority", "id"], name="review_task_kind_status"),
            # Tasks of the subjects a search or filter found (judgments, answers, ...), by subject id.
            models.Index(fields=["subject_id", "subject_type"], name="review_task_subject"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def is_resolved(self) -> bool:
        return self.status == self.Status.DONE


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("Review verdicts are append-only; add a new verdict instead.")

    def delete(self):
        raise TypeError("Review verdicts are append-only and cannot be deleted.")


class ReviewVerdict(models.Model):
    """A reviewer's decision on a task. Append-only: a change of mind is a new verdict, and the
    reviewer's assignment points at the one that counts as his vote."""

    Decision = kinds.Decision

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


class ReviewAssignment(TimeStampedModel):
    """One reviewer's slot on a task: active while he holds it (until the lease expires), submitted once
    he voted (`verdict` is his vote), released when he left it or the task was decided without him."""

    class Status(models.TextChoices):
        ACTIVE = "active", "active"
        SUBMITTED = "submitted", "submitted"
        RELEASED = "released", "released"

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="assignments")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_assignments")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.ACTIVE)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    verdict = models.ForeignKey(ReviewVerdict, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["task", "reviewer"], name="review_assignment_once_per_reviewer"),
        ]
        indexes = [
            # "What does this reviewer hold?" (claiming again returns the held task) and his history.
            models.Index(fields=["reviewer", "status", "lease_expires_at"], name="review_assignment_reviewer"),
            # Taken slots of a task: submitted votes and active leases.
            models.Index(fields=["task", "status", "lease_expires_at"], name="review_assignment_slots"),
        ]

    def __str__(self):
        return f"task {self.task_id} · reviewer {self.reviewer_id} ({self.status})"


class ReviewDraft(models.Model):
    """A reviewer's unsent decision on a task ("save a draft"), one per reviewer and task."""

    task = models.ForeignKey(ReviewTask, on_delete=models.CASCADE, related_name="drafts")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_drafts")
    decision = models.CharField(max_length=8, choices=kinds.Decision.choices, blank=True)
    edited_text = models.TextField(blank=True)
    note = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "reviewer"], name="review_draft_once_per_reviewer")]

    def __str__(self):
        return f"draft by {self.reviewer_id} on task {self.task_id}"
