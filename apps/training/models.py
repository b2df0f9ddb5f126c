"""Training and local generation jobs, their metric curves and the artifacts they leave.

A job lives in the database, not in the broker: a gpu worker claims it with a conditional update, beats
`heartbeat_at` while its subprocess runs and records the outcome; a job whose heartbeat goes stale is
claimed again by the next delivery (see apps.training.services).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TimeStampedModel


class JobStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class GpuJob(TimeStampedModel):
    """What a training job and a generation job share: the claim, the heartbeat and the outcome."""

    Status = JobStatus

    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED, db_index=True)
    base_model = models.CharField(
        max_length=300, default="", help_text='"builtin:tiny", a Hugging Face id or a local path.'
    )
    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker has started it.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, help_text="Last sign of life from its worker.")
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker running it.")
    exit_code = models.IntegerField(null=True, blank=True, help_text="The subprocess's exit code (<0: a signal).")
    output_dir = models.CharField(max_length=1000, blank=True)
    log_path = models.CharField(max_length=1000, blank=True)
    cancel_requested = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    queue_unreachable_at = models.DateTimeField(
        null=True, blank=True, help_text="When the broker refused its message; the recovery sweep sends it again."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED


class TrainingJob(GpuJob):
    round = models.ForeignKey("experiments.Round", on_delete=models.CASCADE, related_name="training_jobs")
    # Nullable in the table only for rows older than snapshots; every new job names one (full_clean).
    snapshot = models.ForeignKey(
        "experiments.Snapshot", null=True, blank=False, on_delete=models.PROTECT, related_name="training_jobs"
    )
    spec = models.JSONField(default=dict, help_text="The trainer's spec (workers.training.spec.TrainSpec fields).")
    steps = models.PositiveIntegerField(default=0, help_text="The last optimiser step reported.")
    metrics_offset = models.PositiveBigIntegerField(
        default=0, help_text="Bytes of metrics.jsonl already stored, so a resumed job reads on from there."
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            # The database, not the code, keeps a round to one job in flight (approve pressed twice, two web
            # servers, a retried request).
            models.UniqueConstraint(
                fields=["round"], condition=Q(status__in=["queued", "running"]), name="training_one_active_job"
            )
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="training_job_stale")]

    def __str__(self):
        return f"training #{self.pk} ({self.status})"


class TrainingMetric(models.Model):
    """One value of one metric at one optimiser step: long runs stay cheap to chart (one index range)."""

    job = models.ForeignKey(TrainingJob, on_delete=models.CASCADE, related_name="metric_rows")
    step = models.PositiveIntegerField()
    name = models.CharField(max_length=64)
    value = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "step", "name"], name="training_metric_unique")]
        indexes = [models.Index(fields=["job", "name", "step"], name="training_metric_curve")]

    def __str__(self):
        return f"{self.name}@{self.step}={self.value}"


class Artifact(models.Model):
    class Kind(models.TextChoices):
        ADAPTER = "adapter", "LoRA adapter"
        WEIGHTS = "weights", "full weights"
        CHECKPOINT = "checkpoint", "checkpoint"
        EXPORT = "export", "dataset export"
        EVALUATION = "evaluation", "evaluation report"
        MERGED = "merged", "merged model"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    training_job = models.ForeignKey(
        TrainingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    round = models.ForeignKey(
        "experiments.Round", null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    source = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="derived",
        help_text="For a merged model: the LoRA adapter it was merged from.",
    )
    path = models.CharField(max_length=1000, help_text="The artifact's folder (or file) on the shared storage.")
    sha256 = models.CharField(
        max_length=64, db_index=True, help_text="For a folder: sha256 of its manifest (one 'sha256  path' line a file)."
    )
    size_bytes = models.PositiveBigIntegerField()
    base_model = models.CharField(max_length=300, blank=True)
    snapshot_hash = models.CharField(max_length=64, blank=True, help_text="The frozen training set it learnt from.")
    spec = models.JSONField(default=dict, blank=True, help_text="The trainer spec that produced it.")
    metadata = models.JSONField(default=dict, blank=True, help_text="files: [{path, sha256, bytes}], steps, loss.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["kind", "-id"], name="artifact_kind")]
        constraints = [
            models.UniqueConstraint(fields=["training_job", "path"], name="artifact_once_per_job_path"),
            # An adapter is merged into its base once: a second press finds the first merge.
            models.UniqueConstraint(
                fields=["source"], condition=Q(kind="merged"), name="artifact_one_merge_per_source"
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.sha256[:12]}"


class GenerationJob(GpuJob):
    """Batched answers of a local student checkpoint (or its base model) for a list of keyed prompts."""

    round = models.ForeignKey("experiments.Round", on_delete=models.CASCADE, related_name="generation_jobs")
    artifact = models.ForeignKey(
        Artifact, null=True, blank=True, on_delete=models.PROTECT, related_name="generation_jobs"
    )
    params = models.JSONField(default=dict, blank=True, help_text="max_new_tokens, temperature, batch_size, seed.")
    prompts_count = models.PositiveIntegerField(default=0)
    done_count = models.PositiveIntegerField(default=0)
    input_path = models.CharField(max_length=1000, blank=True)
    output_path = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="generation_job_stale")]

    def __str__(self):
        return f"generation #{self.pk} ({self.status})"


class GenerationItem(models.Model):
    """One prompt of a generation job and, once generated, its answer. Prompts live in the database so a gpu
    worker on another machine needs no shared file to start."""

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="items")
    key = models.CharField(max_length=300, help_text="The caller's id for the prompt (e.g. stage:instruction).")
    prompt = models.TextField()
    # None until generated: an empty answer is a real answer, so "" cannot mean "not yet".
    text = models.TextField(null=True, blank=True)  # noqa: DJ001
    tokens = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "key"], name="generation_item_unique")]

    def __str__(self):
        return self.key


class MergeJob(GpuJob):
    """Folding a LoRA adapter into its base model on a gpu worker (workers.training.merge); on success the
    merged weights are a new Artifact of kind merged whose `source` is the adapter."""

    adapter = models.ForeignKey(Artifact, on_delete=models.PROTECT, related_name="merge_jobs")
    merged = models.ForeignKey(Artifact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One merge in flight or done per adapter, whoever presses and however often; a failed or
            # cancelled one makes room for another try.
            models.UniqueConstraint(
                fields=["adapter"],
                condition=Q(status__in=["queued", "running", "succeeded"]),
                name="merge_one_live_job_per_adapter",
            )
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="merge_job_stale")]

    def __str__(self):
        return f"merge #{self.pk} ({self.status})"
