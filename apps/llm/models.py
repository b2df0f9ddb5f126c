from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from apps.core.models import TimeStampedModel
from workers.llm import keys


class LLMEndpoint(TimeStampedModel):
    """An OpenAI-compatible endpoint (or an offline backend). The API key is never stored: only the name
    of the environment variable that holds it on the machines that make the calls."""

    class Backend(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible API"
        REPLAY = "offline_replay", "offline: replay recorded answers"
        SIMILARITY_JUDGE = "offline_similarity_judge", "offline: similarity judge"
        RETRIEVAL_GENERATOR = "offline_retrieval", "offline: retrieval generator"
        # Needs no dataset: an embedding model and a head trained on labelled benchmark questions.
        LOCAL_CLASSIFIER = "offline_local_classifier", "offline: local task classifier"

    name = models.CharField(max_length=100, unique=True)
    backend = models.CharField(max_length=32, choices=Backend.choices, default=Backend.OPENAI)
    base_url = models.URLField(max_length=500, blank=True)
    model = models.CharField(max_length=200)
    checkpoint = models.CharField(
        max_length=500,
        blank=True,
        help_text="For a student model served by this endpoint: the checkpoint it serves (an adapter's path or "
        "hash, a training artifact). It is part of the cache key, so two servers with one model name but "
        "different weights never share answers. Leave blank for a provider's API.",
    )
    api_key_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[RegexValidator(r"^[A-Z_][A-Z0-9_]*$", "An environment variable name, e.g. OPENAI_API_KEY.")],
        help_text="Name of the environment variable holding the key (never the key itself).",
    )
    max_concurrency = models.PositiveIntegerField(default=8, validators=[MinValueValidator(1)])
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    timeout_s = models.FloatField(default=120.0, validators=[MinValueValidator(0.1)])
    price_input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    price_output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal("0"))
    default_params = models.JSONField(default=dict, blank=True, help_text="Sampling defaults, e.g. temperature.")
    offline_dataset = models.ForeignKey(
        "datasets.Dataset",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Offline backends only: the dataset whose recorded answers (replay), reference answers "
        "(similarity judge) or reserve instructions (retrieval generator) they use.",
    )
    # What the provider allows done with its output: exports list it and warn when it restricts training.
    terms_of_use = models.TextField(
        blank=True,
        help_text="The provider's terms of use for this model's output (a link or a summary in your words).",
    )
    terms_restrict_training = models.BooleanField(
        default=False,
        verbose_name="terms restrict training",
        help_text="The terms forbid using the output to train models that compete with the provider (as "
        "OpenAI's, Anthropic's and Google's do). Exports of data it wrote then carry a warning.",
    )
    # The last error that stopped work on this endpoint (HTTP status and provider message, never a key).
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "LLM endpoint"
        verbose_name_plural = "LLM endpoints"

    def __str__(self):
        return f"{self.name} ({self.model})"

    @property
    def is_offline(self) -> bool:
        return self.backend != self.Backend.OPENAI

    @property
    def backend_short(self) -> str:
        """The backend's name without the "offline:" the badge already says."""
        return self.get_backend_display().removeprefix("offline: ")

    def clean(self):
        # Only variables meant to hold LLM keys may be named (see workers/llm/keys.py); the client checks
        # again when it reads the key.
        if self.api_key_env and (reason := keys.refusal(self.api_key_env)):
            raise ValidationError({"api_key_env": reason})


class LLMCall(models.Model):
    """One paid call, keyed by the hash of its canonical request (endpoint identity included): the cache
    and the cost ledger. It is paid once; who asked for it is in its uses (LLMCallUse)."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        OK = "ok", "ok"
        INVALID = "invalid", "invalid reply"
        FAILED = "failed", "failed"

    request_hash = models.CharField(max_length=64, unique=True)
    endpoint = models.ForeignKey(LLMEndpoint, null=True, on_delete=models.SET_NULL, related_name="calls")
    model = models.CharField(max_length=200)
    purpose = models.CharField(max_length=32, blank=True, help_text="teacher, judge, generator, classifier…")
    request = models.JSONField(help_text="Messages and sampling parameters as sent.")
    reply = models.TextField(blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=14, decimal_places=8, default=Decimal("0"))
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    parsed = models.JSONField(null=True, blank=True, help_text="The reply parsed by its contract.")
    sample_index = models.PositiveIntegerField(default=0)
    resample_of = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resamples",
        help_text="The call whose unparsable reply this fresh sample replaces.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "LLM call"
        verbose_name_plural = "LLM calls"
        indexes = [
            models.Index(fields=["status"], name="llmcall_status"),
            # The runner's queue: pending calls of one endpoint in primary-key order.
            models.Index(fields=["endpoint", "id"], condition=models.Q(status="pending"), name="llmcall_pending"),
        ]

    def __str__(self):
        return f"{self.model} {self.request_hash[:12]} ({self.status})"


class LLMCallUse(models.Model):
    """One experiment's use of a paid call: which round, stage and item asked for it. Progress, spend,
    costs saved and reviews are counted over uses, so they never cross experiments. Exactly one use of a
    finished call is marked `paid` (the one the budget gate charged); every other use of it was served
    from the ledger and saved its experiment the call's cost."""

    call = models.ForeignKey(LLMCall, on_delete=models.CASCADE, related_name="uses")
    experiment = models.ForeignKey("experiments.Experiment", on_delete=models.CASCADE, related_name="llm_uses")
    round = models.ForeignKey(
        "experiments.Round", null=True, blank=True, on_delete=models.SET_NULL, related_name="llm_uses"
    )
    stage = models.CharField(max_length=32, blank=True)
    item = models.CharField(
        max_length=200,
        blank=True,
        help_text="The stage's own stable key for what the call answers, e.g. instruction:123:teacher. "
        "Include the round in it when each round must count the item anew.",
    )
    paid = models.BooleanField(default=False, help_text="This use's experiment was charged for the call.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "LLM call use"
        verbose_name_plural = "LLM call uses"
        constraints = [
            # Also the index for "the uses of these calls" (the runner's feed, review tasks).
            models.UniqueConstraint(fields=["call", "experiment", "item"], name="llmcalluse_once_per_item"),
            models.UniqueConstraint(fields=["call"], condition=models.Q(paid=True), name="llmcalluse_one_payer"),
        ]
        indexes = [
            # Roll-ups and progress of one experiment, by round and stage.
            models.Index(fields=["experiment", "round", "stage"], name="llmcalluse_experiment"),
            models.Index(fields=["round", "stage"], name="llmcalluse_round_stage"),
        ]

    def __str__(self):
        return f"use of call {self.call_id} by experiment {self.experiment_id} ({self.item or self.stage})"


class LLMHold(models.Model):
    """The gateway must not send calls for this experiment (only calls that no other, unheld experiment
    also uses). Placed by the gateway (budget, rejected request, unusable endpoint) or by the experiments
    app when it pauses; released when the experiment resumes."""

    experiment = models.ForeignKey("experiments.Experiment", on_delete=models.CASCADE, related_name="llm_holds")
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "LLM hold"
        verbose_name_plural = "LLM holds"
        constraints = [
            models.UniqueConstraint(
                fields=["experiment"], condition=models.Q(released_at__isnull=True), name="llmhold_one_active"
            )
        ]

    def __str__(self):
        state = "released" if self.released_at else "active"
        return f"hold on experiment {self.experiment_id} ({state})"


class LLMRunnerLease(models.Model):
    """At most one runner works an endpoint at a time, so the endpoint's limits hold across workers.
    The runner renews the lease while it works; a lease left by a killed worker expires on its own."""

    endpoint = models.OneToOneField(LLMEndpoint, on_delete=models.CASCADE, related_name="lease")
    owner = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"lease on {self.endpoint_id} by {self.owner or 'nobody'}"


class ClassifierExample(models.Model):
    """A labelled task the local task classifier learns from. Source `review`: a reviewer decided an
    instruction's task category in a task-label queue (an accept keeps the label, an edit gives the new
    one). One row per task text and source; a later decision on the same text replaces the label. The
    experiment and round it was decided in are kept as plain ids (the gateway sits below the engine)."""

    class Source(models.TextChoices):
        REVIEW = "review", "reviewer"

    text = models.TextField(help_text="The task as the classifier reads it: instruction, then input if any.")
    content_hash = models.CharField(max_length=64, help_text="The instruction's content hash (its text and input).")
    category = models.CharField(max_length=64)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.REVIEW)
    experiment_id = models.BigIntegerField(null=True, blank=True)
    round_id = models.BigIntegerField(null=True, blank=True)
    review_task_id = models.BigIntegerField(null=True, blank=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="classifier_examples"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["content_hash", "source"], name="classifierexample_once_per_source")
        ]

    def __str__(self):
        return f"{self.category} ({self.source}): {self.text[:60]}"


class ClassifierVersion(models.Model):
    """One retraining of the local task classifier's head: queued, running, then ready (its head saved
    under MEDIA_ROOT with its sha256, and how well it did on held-out items) or failed (with the error).
    At most one is queued at a time, so a burst of decided reviews queues one retraining."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        READY = "ready", "ready"
        FAILED = "failed", "failed"

    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=16, help_text="What queued it: review (decided task labels) or operator.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    examples = models.PositiveIntegerField(default=0, help_text="Labelled tasks the head was fitted on.")
    review_examples = models.PositiveIntegerField(default=0, help_text="Of those, reviewers' labels.")
    categories = models.PositiveIntegerField(default=0, help_text="Task categories the head knows.")
    heldout_size = models.PositiveIntegerField(default=0, help_text="Items of the fixed held-out split.")
    accuracy = models.FloatField(null=True, blank=True, help_text="Accuracy on the held-out split.")
    review_heldout_size = models.PositiveIntegerField(default=0)
    review_accuracy = models.FloatField(null=True, blank=True, help_text="Held-out accuracy on reviewers' labels.")
    cv_accuracy = models.FloatField(null=True, blank=True, help_text="Stratified 5-fold cross-validated accuracy.")
    path = models.CharField(max_length=500, blank=True, help_text="The head's files, relative to MEDIA_ROOT.")
    sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the head's .npz then .json file.")
    embedder = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"], condition=models.Q(status="queued"), name="classifierversion_one_queued"
            )
        ]
        indexes = [models.Index(fields=["status", "-id"], name="classifierversion_status")]

    def __str__(self):
        return f"classifier version {self.pk} ({self.status})"
