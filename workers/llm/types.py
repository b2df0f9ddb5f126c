"""Plain data the client works with; no Django, so the client runs anywhere."""

from dataclasses import dataclass, field
from decimal import Decimal

from workers.llm.keys import RefusedKeyVariable, read_key


class MissingApiKey(RuntimeError):
    """The endpoint's key cannot be had where the call is made: its variable is unset, or is not one
    that may hold an API key (see keys.py)."""


@dataclass(frozen=True)
class EndpointConfig:
    name: str
    base_url: str
    model: str
    api_key_env: str = ""
    backend: str = "openai"
    max_concurrency: int = 8
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    timeout_s: float = 120.0
    price_input_per_mtok: Decimal = Decimal(0)
    price_output_per_mtok: Decimal = Decimal(0)
    default_params: dict = field(default_factory=dict)
    # Seconds since the endpoint's previous run stopped sending (None: long enough ago for full rate
    # buckets). The gateway gives it, so the limits hold across runs and worker processes.
    idle_s: float | None = None

    def api_key(self) -> str:
        """Read the key from the environment at call time, on the machine that makes the call.

        An endpoint without a key variable (a local vLLM or llama.cpp server) gets a placeholder: the SDK
        insists on some key and such servers ignore it."""
        if not self.api_key_env:
            return "no-key"
        try:
            value = read_key(self.api_key_env)
        except RefusedKeyVariable as exc:
            raise MissingApiKey(f"Endpoint {self.name!r}: {exc}") from None
        if not value:
            raise MissingApiKey(
                f"Endpoint {self.name!r}: the environment variable {self.api_key_env} is not set on this worker."
            )
        return value

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        return (
            Decimal(prompt_tokens) * self.price_input_per_mtok + Decimal(completion_tokens) * self.price_output_per_mtok
        ) / Decimal(1_000_000)


@dataclass(frozen=True)
class CallJob:
    """One request for the client: `key` is the caller's handle (the LLMCall id)."""

    key: int
    body: dict
    request_hash: str = ""
    token_estimate: int = 0  # prompt + maximum completion tokens, for the tokens-per-minute bucket


OK = "ok"
FAILED = "failed"  # retries spent on transient errors (429, 5xx, timeouts)
FATAL = "fatal"  # an error that retrying cannot fix (400, 401, 403, 404, missing key)


@dataclass
class CallResult:
    key: int
    status: str
    content: str = ""
    finish_reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: int | None = None
    attempts: int = 0
    error: str = ""
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK
