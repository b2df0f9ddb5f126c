"""The async client: one endpoint, many calls, within the endpoint's limits.

Built on the openai SDK's AsyncOpenAI (auth, base URL, timeouts, HTTP error mapping). Two choices keep its
per-call cost small enough for hundreds of calls a second on two cores:
- calls go through `AsyncOpenAI.post` with the body we already hold as a dict and come back as the raw
  response, parsed with orjson. `chat.completions.create` would re-validate the body against the SDK's
  typed schema and build pydantic models for the reply: about 1.7 ms of CPU per call that buys us nothing;
- plain-http endpoints (self-hosted servers) use the lean transport in transport.py.
The SDK's own retries are off: this module retries, because it must honour Retry-After across every
request to the endpoint, not per request.
"""

import asyncio
import logging
import os
import random
import ssl
import time

import httpx2
import openai
import orjson

from workers.llm.ratelimit import EndpointLimiter
from workers.llm.redaction import redact
from workers.llm.retry import RetryPolicy, is_retryable_status, parse_retry_after
from workers.llm.transport import LeanTransport
from workers.llm.types import FAILED, FATAL, OK, CallJob, CallResult, EndpointConfig, MissingApiKey

# httpx2 logs every request at INFO: hundreds of lines a second in a busy worker, and measurable CPU.
# Unless logging was configured for it explicitly, keep it to warnings; the ledger records every call.
if logging.getLogger("httpx2").level == logging.NOTSET:
    logging.getLogger("httpx2").setLevel(logging.WARNING)

REQUEST_HASH_HEADER = "X-Retort-Request-Hash"
# Statuses that say the endpoint itself is unusable (key, permission, URL or model): after the first,
# nothing more is sent to it in this batch.
ENDPOINT_BROKEN = frozenset({401, 403, 404})
_PROXY_VARS = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


def _use_lean_transport(base_url: str) -> bool:
    return base_url.startswith("http://") and not any(os.environ.get(name) for name in _PROXY_VARS)


def _certificate_refused(exc: BaseException) -> bool:
    """The server's certificate failed verification (somewhere in the exception's causes). Retrying cannot
    help, and neither can the next request: the endpoint is unusable until its certificate or our trust
    store changes."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _error_text(exc: BaseException, key: str) -> str:
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if exc.body is not None else ""
        detail = body.get("message", body) if isinstance(body, dict) else body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            detail = body["error"].get("message", body["error"])
        text = f"HTTP {exc.status_code}: {detail}"
    elif isinstance(exc, openai.APITimeoutError):
        text = "timed out"
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        text = f"connection error: {cause}" if cause else "connection error"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return redact(str(text)[:2000], key)


class LLMClient:
    """Use as `async with LLMClient(config) as client: result = await client.call(job)`."""

    def __init__(self, config: EndpointConfig, *, policy: RetryPolicy | None = None, rng: random.Random | None = None):
        self.config = config
        self.policy = policy or RetryPolicy()
        self.limiter = EndpointLimiter(
            config.max_concurrency, config.requests_per_minute, config.tokens_per_minute, idle_s=config.idle_s
        )
        self._rng = rng or random.Random()
        self._sdk: openai.AsyncOpenAI | None = None
        self._key = ""
        self.broken: CallResult | None = None

    async def __aenter__(self) -> "LLMClient":
        self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    def open(self) -> None:
        """Resolve the key (raises MissingApiKey) and build the SDK client."""
        self._key = self.config.api_key()
        http_client = None
        if _use_lean_transport(self.config.base_url):
            http_client = httpx2.AsyncClient(transport=LeanTransport())
        self._sdk = openai.AsyncOpenAI(
            base_url=self.config.base_url,
            api_key=self._key,
            max_retries=0,
            timeout=self.config.timeout_s,
            http_client=http_client,
        )

    async def aclose(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
            self._sdk = None

    async def _send(self, job: CallJob):
        headers = {REQUEST_HASH_HEADER: job.request_hash} if job.request_hash else None
        response = await self._sdk.post(
            "/chat/completions",
            cast_to=httpx2.Response,
            body=job.body,
            options={"headers": headers} if headers else {},
        )
        return orjson.loads(response.content)

    async def call(self, job: CallJob) -> CallResult:
        """Make one call, retrying transient failures. Never raises for an HTTP or network problem: the
        outcome is in the result's status (ok, failed after retries, or fatal)."""
        if self._sdk is None:
            raise RuntimeError("LLMClient used outside `async with`")
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            await self.limiter.acquire(job.token_estimate)
            if self.broken is not None:
                self.limiter.release()
                return CallResult(
                    job.key, FATAL, error=self.broken.error, http_status=self.broken.http_status, attempts=attempt - 1
                )
            started = time.perf_counter()
            try:
                data = await self._send(job)
            except openai.APIStatusError as exc:
                status = exc.status_code
                error = _error_text(exc, self._key)
                if not is_retryable_status(status):
                    result = CallResult(job.key, FATAL, attempts=attempt, error=error, http_status=status)
                    if status in ENDPOINT_BROKEN:
                        self.broken = result
                    return result
                retry_after = parse_retry_after(exc.response.headers)
                if status == 429:
                    # Everyone waits, not just this request: the limit is the endpoint's, not the call's.
                    self.limiter.cool_down(
                        retry_after if retry_after is not None else self.policy.delay(attempt, None, self._rng)
                    )
            except (openai.APIConnectionError, orjson.JSONDecodeError) as exc:
                status = None
                error = (
                    _error_text(exc, self._key)
                    if not isinstance(exc, orjson.JSONDecodeError)
                    else "the reply was not JSON"
                )
                if _certificate_refused(exc):
                    self.broken = CallResult(
                        job.key, FATAL, attempts=attempt, error=f"{error} (the server's TLS certificate is not trusted)"
                    )
                    return self.broken
            else:
                latency_ms = int((time.perf_counter() - started) * 1000)
                result = self._result(job, data, attempt, latency_ms)
                if result is not None:
                    return result
                status, error = None, "the reply had no choices"
            finally:
                self.limiter.release()
            if retry_after is not None and retry_after > self.policy.max_retry_after_s:
                return CallResult(
                    job.key,
                    FAILED,
                    attempts=attempt,
                    http_status=status,
                    error=f"{error} (the provider asked to wait {retry_after:.0f} s)",
                )
            if attempt >= self.policy.max_attempts:
                return CallResult(
                    job.key,
                    FAILED,
                    attempts=attempt,
                    http_status=status,
                    error=f"{error} (gave up after {attempt} attempts)",
                )
            await asyncio.sleep(self.policy.delay(attempt, retry_after, self._rng))

    @staticmethod
    def _result(job: CallJob, data, attempt: int, latency_ms: int) -> CallResult | None:
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError):
            return None
        message = choice.get("message") or {}
        content = message.get("content")
        usage = data.get("usage") or {}
        return CallResult(
            job.key,
            OK,
            content=content if isinstance(content, str) else "",
            finish_reason=choice.get("finish_reason") or "",
            attempts=attempt,
            latency_ms=latency_ms,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )


async def call_once(config: EndpointConfig, body: dict, *, policy: RetryPolicy | None = None) -> CallResult:
    """One call outside any batch (the "test connection" button)."""
    client = LLMClient(config, policy=policy or RetryPolicy(max_attempts=1))
    try:
        client.open()
    except MissingApiKey as exc:
        return CallResult(0, FATAL, error=str(exc))
    try:
        return await client.call(CallJob(0, body))
    finally:
        await client.aclose()
