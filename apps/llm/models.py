from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from apps.core.models import TimeStampedModel


class LLMEndpoint(TimeStampedModel):
    """An OpenAI-compatible endpoint (or an offline backend). The API key is never stored: only the name
    of the environment variable that holds it on the machines that make the calls."""

    class Backend(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible API"
        REPLAY = "offline_replay", "offline: replay recorded answers"
        SIMILARITY_JUDGE = "offline_similarity_judge", "offline: similarity judge"
        RETRIEVAL_GENERATOR = "offline_retrieval", "offline: retrieval generator"

    name = models.CharField(max_length=100, unique=True)
    backend = models.CharField(max_length=32, choices=Backend.choices, default=Backend.OPENAI)
    base_url = models.URLField(max_length=500, blank=True)
    model = models.CharField(max_length=200)
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
    # The last error that stopped work on this endpoint (HTTP status and provider message, never a key).
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.model})"

    @property
    def is_offline(self) -> bool:
        return self.backend != self.Backend.OPENAI


class LLMCall(models.Model):
    """One paid call, keyed by the hash of its canonical request: the cache and the cost ledger."""

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
    experiment = models.ForeignKey(
        "experiments.Experiment", null=True, blank=True, on_delete=models.SET_NULL, related_name="llm_calls"
    )
    round = models.ForeignKey(
        "experiments.Round", null=True, blank=True, on_delete=models.SET_NULL, related_name="llm_calls"
    )
    stage = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["experiment", "stage"], name="llmcall_experiment_stage"),
            models.Index(fields=["round", "stage"], name="llmcall_round_stage"),
            models.Index(fields=["status"], name="llmcall_status"),
            # The runner's queue: pending calls of one endpoint in primary-key order.
            models.Index(fields=["endpoint", "id"], condition=models.Q(status="pending"), name="llmcall_pending"),
        ]

    def __str__(self):
        return f"{self.model} {self.request_hash[:12]} ({self.status})"


class LLMRunnerLease(models.Model):
    """At most one runner works an endpoint at a time, so the endpoint's limits hold across workers.
    The runner renews the lease while it works; a lease left by a killed worker expires on its own."""

    endpoint = models.OneToOneField(LLMEndpoint, on_delete=models.CASCADE, related_name="lease")
    owner = models.CharField(max_length=100, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"lease on {self.endpoint_id} by {self.owner or 'nobody'}"
