from django.conf import settings
from django.db import models

from apps.core.models import TimeStampedModel


class Experiment(TimeStampedModel):
    class Recipe(models.TextChoices):
        LION = "lion", "Lion (adversarial distillation)"
        TAPIR = "tapir", "TAPIR (task-aware curriculum)"
        STEP_BY_STEP = "step_by_step", "Distilling step-by-step"
        MOS = "mos", "Mixture-of-Skills"

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        RUNNING = "running", "running"
        WAITING_REVIEW = "waiting_review", "waiting for review"
        WAITING_APPROVAL = "waiting_approval", "waiting for approval"
        TRAINING = "training", "training"
        PAUSED = "paused", "paused"
        FINISHED = "finished", "finished"
        FAILED = "failed", "failed"

    name = models.CharField(max_length=200, unique=True)
    recipe = models.CharField(max_length=16, choices=Recipe.choices)
    config = models.JSONField(default=dict, blank=True, help_text="The recipe's validated configuration.")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="experiments")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    status_reason = models.TextField(blank=True, help_text="Why the experiment is paused or failed.")
    resume_status = models.CharField(
        max_length=20,
        choices=Status.choices,
        blank=True,
        help_text="While paused: the status the experiment returns to when it resumes.",
    )
    teacher_endpoint = models.ForeignKey(
        "llm.LLMEndpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    judge_endpoint = models.ForeignKey(
        "llm.LLMEndpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    generator_endpoint = models.ForeignKey(
        "llm.LLMEndpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    classifier_endpoint = models.ForeignKey(
        "llm.LLMEndpoint", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    student_model = models.CharField(max_length=300, default="builtin:tiny")
    budget_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    budget_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return self.name


class Round(TimeStampedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        WAITING_REVIEW = "waiting_review", "waiting for review"
        APPROVED = "approved", "approved"
        TRAINING = "training", "training"
        FINISHED = "finished", "finished"
        FAILED = "failed", "failed"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="rounds")
    index = models.PositiveIntegerField()
    stage = models.CharField(max_length=32, blank=True, help_text="The stage the round is at.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    params = models.JSONField(default=dict, blank=True, help_text="Round parameters, e.g. alpha (hard share).")
    metrics = models.JSONField(default=dict, blank=True)
    training_set_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 snapshot of its training set.")
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    approved_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["experiment", "index"]
        constraints = [models.UniqueConstraint(fields=["experiment", "index"], name="round_unique_index")]

    def __str__(self):
        return f"{self.experiment} · round {self.index}"
