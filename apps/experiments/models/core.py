"""Experiments, their datasets, rounds and stage runs: the rows the engine's state machine moves."""

from decimal import Decimal

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
        CANCELLED = "cancelled", "cancelled"

    name = models.CharField(max_length=200, unique=True)
    recipe = models.CharField(max_length=16, choices=Recipe.choices)
    config = models.JSONField(default=dict, blank=True, help_text="The validated configuration, frozen at creation.")
    config_hash = models.CharField(max_length=64, blank=True, db_index=True, help_text="SHA-256 of the config.")
    seed = models.BigIntegerField(default=0, help_text="Every random choice of the experiment derives from it.")
    # The seed dataset (Lion, TAPIR, step-by-step); a mixture of skills has several (ExperimentDataset).
    dataset = models.ForeignKey(
        "datasets.Dataset", null=True, blank=True, on_delete=models.PROTECT, related_name="experiments"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    status_reason = models.TextField(blank=True, help_text="Why the experiment is paused or failed.")
    resume_status = models.CharField(
        max_length=20,
        choices=Status.choices,
        blank=True,
        help_text="While paused: the status the experiment returns to when it resumes.",
    )
    auto_approve = models.BooleanField(
        default=False, help_text="Headless runs: gates and approve-and-train are decided without a person."
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
    student_endpoint = models.ForeignKey(
        "llm.LLMEndpoint",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="A served student (vLLM, Ollama, …); without one the student answers on a gpu worker.",
    )
    student_model = models.CharField(max_length=300, default="builtin:tiny")
    budget_usd = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    budget_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return self.name


class ExperimentDataset(models.Model):
    """A dataset an experiment reads: its seed pool, a skill or target of a mixture, an eval set."""

    class Role(models.TextChoices):
        SEED = "seed", "seed"
        SKILL = "skill", "skill"
        TARGET = "target", "target"
        EVAL = "eval", "evaluation"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="experiment_datasets")
    dataset = models.ForeignKey("datasets.Dataset", on_delete=models.PROTECT, related_name="experiment_uses")
    role = models.CharField(max_length=8, choices=Role.choices)
    weight = models.FloatField(null=True, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "dataset", "role"], name="experimentdataset_once_per_role")
        ]

    def __str__(self):
        return f"{self.experiment_id}: {self.role} {self.dataset_id}"


class Round(TimeStampedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        WAITING_REVIEW = "waiting_review", "waiting for review"
        WAITING_APPROVAL = "waiting_approval", "waiting for approval"
        TRAINING = "training", "training"
        EVALUATING = "evaluating", "evaluating"
        FINISHED = "finished", "finished"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="rounds")
    index = models.PositiveIntegerField()
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


class StageRun(models.Model):
    """One stage of one round: its state, where its batches are (cursor, phase) and what it has done."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        RUNNING = "running", "running"
        WAITING = "waiting", "waiting"  # for reviewers, an approval or a training job
        DONE = "done", "done"
        FAILED = "failed", "failed"
        PAUSED = "paused", "paused"
        CANCELLED = "cancelled", "cancelled"

    class Phase(models.TextChoices):
        SUBMIT = "submit", "submitting"  # walking its items, queueing work
        WAIT = "wait", "waiting for calls"  # LLM kinds: until every call has settled
        COLLECT = "collect", "collecting"  # walking its items again, storing results
        FINALIZE = "finalize", "finalizing"

    round = models.ForeignKey(Round, on_delete=models.CASCADE, related_name="stage_runs")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=32)
    kind = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    phase = models.CharField(max_length=12, choices=Phase.choices, default=Phase.SUBMIT)
    total = models.PositiveBigIntegerField(default=0)
    done = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    cursor = models.BigIntegerField(default=0, help_text="Keyset position of the current phase.")
    state = models.JSONField(default=dict, blank=True, help_text="What the kind keeps between steps (a plan).")
    attempts = models.PositiveIntegerField(default=0)
    owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["round", "position"]
        constraints = [
            models.UniqueConstraint(fields=["round", "position"], name="stagerun_unique_position"),
            models.UniqueConstraint(fields=["round", "name"], name="stagerun_unique_name"),
        ]
        indexes = [models.Index(fields=["status", "lease_expires_at"], name="stagerun_status_lease")]

    def __str__(self):
        return f"{self.round} · {self.name} ({self.status})"
