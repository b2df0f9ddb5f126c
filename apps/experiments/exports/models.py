"""An export job: what to export, how far it has got, and the files it left (with their hashes)."""

from django.conf import settings
from django.db import models

from apps.core.models import TimeStampedModel

FORMAT_CHOICES = [
    ("alpaca", "Alpaca JSON"),
    ("sharegpt", "ShareGPT JSON"),
    ("openai", "OpenAI chat JSONL"),
    ("parquet", "parquet"),
    ("bundle", "bundle (zip of every format)"),
]


class ExportJob(TimeStampedModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    format = models.CharField(max_length=16, choices=FORMAT_CHOICES)
    # What is exported: a dataset (with filters) or a round's snapshot.
    dataset = models.ForeignKey(
        "datasets.Dataset", null=True, blank=True, on_delete=models.SET_NULL, related_name="export_jobs"
    )
    round = models.ForeignKey(
        "experiments.Round", null=True, blank=True, on_delete=models.SET_NULL, related_name="export_jobs"
    )
    source_label = models.CharField(max_length=300, help_text="What was exported, in words (kept if rows go).")
    filters = models.JSONField(default=dict, blank=True, help_text="{category, origin, ids}")
    options = models.JSONField(default=dict, blank=True, help_text="{provenance, scores, review}")
    total = models.PositiveBigIntegerField(default=0)
    done = models.PositiveBigIntegerField(default=0)
    output_dir = models.CharField(max_length=1000, blank=True)
    files = models.JSONField(default=list, blank=True, help_text="[{name, format, records, bytes, sha256}]")
    manifest = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    queue_unreachable_at = models.DateTimeField(
        null=True, blank=True, help_text="When the broker refused its message; the recovery sweep sends it again."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"export #{self.pk} of {self.source_label} ({self.format}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.FAILED}

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        return min(99, int(100 * self.done / self.total)) if self.total else 0
