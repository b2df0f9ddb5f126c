from django.conf import settings
from django.db import models

from apps.core.models import TimeStampedModel


class Dataset(TimeStampedModel):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="Where the data came from.")
    license = models.CharField(max_length=200, blank=True)
    # Kept by the import service in the same transaction as the rows, so a list of datasets never has
    # to count millions of instructions.
    size = models.PositiveBigIntegerField(default=0)
    # Instructions an experiment generated live in a dataset it owns, never in a shared seed dataset
    # (where they would become other experiments' seeds); pickers and lists leave owned datasets out.
    owner_experiment = models.ForeignKey(
        "experiments.Experiment", null=True, blank=True, on_delete=models.CASCADE, related_name="owned_datasets"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Instruction(models.Model):
    # Where a row came from. An imported dataset is the seed pool and stays as imported: whether a row
    # serves as a seed is the experiment's business (it owns pools and what it generates), not a third
    # origin here.
    class Origin(models.TextChoices):
        IMPORTED = "imported", "imported"
        GENERATED = "generated", "generated"

    # No single-column index on dataset: the (dataset, …) indexes below serve every lookup by dataset,
    # and each extra index costs the million-row import a little more.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="instructions", db_index=False)
    text = models.TextField()
    input = models.TextField(blank=True)
    reference_output = models.TextField(blank=True, help_text="A recorded answer, e.g. GPT-4's.")
    gold_label = models.CharField(max_length=500, blank=True)
    task_category = models.CharField(max_length=64, blank=True)
    origin = models.CharField(max_length=16, choices=Origin.choices, default=Origin.IMPORTED)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        db_index=False,
        help_text="The instruction this one was generated or expanded from.",
    )
    created_in_round = models.ForeignKey(
        "experiments.Round",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="new_instructions",
        db_index=False,
    )
    # SHA-256 of the normalised instruction, input and any further conversation turns (see
    # apps.datasets.formats.records.content_hash). Unique per dataset: the import's duplicate test.
    content_hash = models.CharField(max_length=64)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "content_hash"], name="instruction_unique_content_per_dataset"),
            models.CheckConstraint(condition=~models.Q(text=""), name="instruction_text_not_empty"),
        ]
        indexes = [
            # Browsing and batch stages walk one dataset by primary key (keyset pagination).
            models.Index(fields=["dataset", "id"], name="instruction_dataset_id"),
            # Task resampling and the category filter.
            models.Index(fields=["dataset", "task_category", "id"], name="instruction_dataset_task"),
            # Imported rows have neither: partial indexes skip them.
            models.Index(fields=["parent"], name="instruction_parent", condition=models.Q(parent__isnull=False)),
            models.Index(
                fields=["created_in_round"],
                name="instruction_round",
                condition=models.Q(created_in_round__isnull=False),
            ),
        ]

    def __str__(self):
        return self.text[:80]


class DatasetCategoryCount(models.Model):
    """How many of a dataset's instructions carry each task category. Every writer of `task_category`
    keeps it in its own transaction (apps/datasets/categories.py), so the browser's category choices and
    counts read a few rows per dataset, never the dataset itself. Instructions without a category have no
    row: they are the dataset's size less the sum."""

    # The unique (dataset, category) index serves every lookup by dataset.
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="category_counts", db_index=False)
    category = models.CharField(max_length=64)
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["dataset", "category"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "category"], name="category_count_once_per_dataset"),
            models.CheckConstraint(condition=~models.Q(category=""), name="category_count_not_blank"),
        ]

    def __str__(self):
        return f"{self.category}: {self.count}"


class ImportJob(TimeStampedModel):
    """One import of a file into a dataset, run by a Celery worker or a management command."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    dataset_name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="imports")
    source_path = models.CharField(max_length=1000)
    original_filename = models.CharField(max_length=500, blank=True)
    format = models.CharField(max_length=16, default="auto")
    detected_format = models.CharField(max_length=16, blank=True)
    skip_invalid = models.BooleanField(default=False)
    license = models.CharField(max_length=200, blank=True, help_text="The file's licence, recorded on the dataset.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    records_read = models.PositiveBigIntegerField(default=0)
    imported = models.PositiveBigIntegerField(default=0)
    duplicates = models.PositiveBigIntegerField(default=0)
    skipped_invalid = models.PositiveBigIntegerField(default=0)
    # [{"location": "line 17", "reason": "..."}], capped; `error_count` holds the true total.
    errors = models.JSONField(default=list, blank=True)
    error_count = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    blocked_by_invalid = models.BooleanField(
        default=False, help_text="Failed only because of invalid records: skipping them would import the rest."
    )
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker that ran it last.")
    attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    queue_unreachable_at = models.DateTimeField(
        null=True, blank=True, help_text="When the broker refused its message; the recovery sweep sends it again."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"import #{self.pk} into {self.dataset_name} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}
