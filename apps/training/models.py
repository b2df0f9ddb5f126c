from django.conf import settings
from django.db import models

from apps.core.models import TimeStampedModel


class TrainingJob(TimeStampedModel):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    round = models.ForeignKey("experiments.Round", on_delete=models.CASCADE, related_name="training_jobs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    spec = models.JSONField(default=dict, help_text="The trainer's job spec (model, data, hyper-parameters).")
    worker = models.CharField(max_length=200, blank=True, help_text="Host name of the worker running it.")
    celery_task_id = models.CharField(max_length=64, blank=True)
    progress = models.FloatField(default=0.0, help_text="0–1")
    metrics = models.JSONField(default=dict, blank=True)
    checkpoint = models.CharField(max_length=1000, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"training #{self.pk} for {self.round} ({self.status})"


class Artifact(models.Model):
    class Kind(models.TextChoices):
        ADAPTER = "adapter", "LoRA adapter"
        CHECKPOINT = "checkpoint", "checkpoint"
        EXPORT = "export", "dataset export"
        EVALUATION = "evaluation", "evaluation report"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    training_job = models.ForeignKey(
        TrainingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    round = models.ForeignKey(
        "experiments.Round", null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    path = models.CharField(max_length=1000)
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["kind", "-id"], name="artifact_kind")]

    def __str__(self):
        return f"{self.kind} {self.path}"
