"""A small OpenAI-compatible HTTP server for tests and benchmarks, on asyncio streams.

It speaks just enough HTTP/1.1 for the openai SDK: keep-alive, Content-Length bodies or, with `chunked=True`,
Transfer-Encoding: chunked replies; over TLS when given an SSL context (see tls.py for throwaway
certificates). Routes: `POST /v1/chat/completions` and `GET /v1/models`. Faults are drawn per request from a
seeded generator: latency, 429 with Retry-After, 500, a hang past the client's timeout, a reply cut by the
length limit and garbage that breaks the role's reply contract. A model named `status-<code>` always answers
with that HTTP status. When `api_key` is set, a request without it gets a 401 whose body repeats the key it
was sent, as some real providers do, so tests can prove the key never leaks from our side.

Control routes (JSON): `POST /_control/faults` (merge new settings), `GET /_control/stats`,
`POST /_control/reset`.
"""

import asyncio
import contextlib
import dataclasses
import json
import random
import ssl
import threading
import time
from dataclasses import dataclass

from tests.llm_server import replies

REQUEST_HASH_HEADER = "x-retort-request-hash"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass
class Faults:
    latency_s: float = 0.0
    jitter_s: float = 0.0
    p_429: float = 0.0
    p_500: float = 0.0
    p_timeout: float = 0.0
    p_truncated: float = 0.0
    p_garbage: float = 0.0
    retry_after_s: float | None = 1.0  # None: send no Retry-After header
    hang_s: float = 30.0  # how long a "timeout" request is held before the connection is dropped
    api_key: str | None = None
    chunked: bool = False  # send replies with Transfer-Encoding: chunked instead of Content-Length
    seed: int = 0
    # Draw each request's fault from (seed, request hash, how often that hash came before) instead of one
    # stream in arrival order: which calls fail is then the same in every run, however they interleave.
    per_request: bool = False
    # Replies wait while this is set (requests are taken and then held): a test keeps a stage in the middle
    # of its calls for as long as it needs, whatever the machine's load, and clears it to let them finish.
    hold: bool = False


@dataclass
class Stats:
    requests: int = 0
    by_status: dict = dataclasses.field(default_factory=dict)
    by_fault: dict = dataclasses.field(default_factory=dict)
    # (monotonic time, request hash header or "", status or fault name), in arrival order.
    events: list = dataclasses.field(default_factory=list)
    max_in_flight: int = 0
    chunked_replies: int = 0  # replies sent with Transfer-Encoding: chunked
    connections: int = 0  # connections accepted
    held: int = 0  # requests waiting now for `hold` to clear


class LLMTestServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.faults = faults or Faults()
        self.stats = Stats()
        self._rng = random.Random(self.faults.seed)
        self._seen: dict[str, int] = {}  # request hash -> requests seen with it (per_request draws)
        self._server: asyncio.base_events.Server | None = None
        self._in_flight = 0
        self._handlers: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.host, self.port, backlog=1024, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Requests still sleeping (latency, simulated hangs) end now, not after the loop is gone.
            for task in list(self._handlers):
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    def configure(self, **changes) -> None:
        self.faults = dataclasses.replace(self.faults, **changes)
        if "seed" in changes:
            self._rng = random.Random(self.faults.seed)

    def reset(self) -> None:
        self.stats = Stats()

    # --- HTTP plumbing -----------------------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._handlers.add(task)
        self.stats.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length") or 0)
                body = await reader.readexactly(length) if length else b""
                outcome = await self._route(method, target.split("?", 1)[0], headers, body)
                if outcome is None:  # a simulated timeout: drop the connection without a word
                    return
                status, payload, extra_headers = outcome
                data = json.dumps(payload).encode()
                chunked = self.faults.chunked
                head_lines = [
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
                    "content-type: application/json",
                    "transfer-encoding: chunked" if chunked else f"content-length: {len(data)}",
                ]
                head_lines += [f"{k}: {v}" for k, v in extra_headers.items()]
                writer.write(("\r\n".join(head_lines) + "\r\n\r\n").encode())
                if chunked:
                    await self._write_chunked(writer, data)
                    self.stats.chunked_replies += 1
                else:
                    writer.write(data)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._handlers.discard(task)
            writer.close()

    @staticmethod
    async def _write_chunked(writer: asyncio.StreamWriter, data: bytes) -> None:
        """The body in a few chunks, each flushed on its own so the client reads them as they come; the
        first carries a chunk extension and the last chunk a trailer, both of which clients must skip."""
        step = max(1, len(data) // 3)
        for i, start in enumerate(range(0, len(data), step)):
            piece = data[start : start + step]
            writer.write(f"{len(piece):x}{';part=first' if i == 0 else ''}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\nx-retort-trailer: done\r\n\r\n")

    async def _route(self, method: str, path: str, headers: dict, body: bytes):
        if path.startswith("/_control/"):
            return self._control(method, path, body)
        if method == "GET" and path.endswith("/models"):
            return 200, {"object": "list", "data": [{"id": "teacher-test", "object": "model"}]}, {}
        if method == "POST" and path.endswith("/chat/completions"):
            self._in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self._in_flight)
            try:
                return await self._chat(headers, json.loads(body or b"{}"))
            finally:
                self._in_flight -= 1
        return 404, {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error"}}, {}

    def _control(self, method: str, path: str, body: bytes):
        if path == "/_control/faults" and method == "POST":
            self.configure(**json.loads(body or b"{}"))
            return 200, dataclasses.asdict(self.faults), {}
        if path == "/_control/stats":
            return 200, dataclasses.asdict(self.stats), {}
        if path == "/_control/reset" and method == "POST":
            self.reset()
            return 200, {"ok": True}, {}
        return 404, {"error": {"message": "unknown control route"}}, {}

    # --- the fake model ------------------------------------------------------------------------------
    def _record(self, request_hash: str, outcome) -> None:
        self.stats.requests += 1
        key = str(outcome)
        bucket = self.stats.by_status if isinstance(outcome, int) else self.stats.by_fault
        bucket[key] = bucket.get(key, 0) + 1
        self.stats.events.append((time.monotonic(), request_hash, outcome))

    def _rng_for(self, request_hash: str) -> random.Random:
        if not (self.faults.per_request and request_hash):
            return self._rng
        seen = self._seen.get(request_hash, 0)
        self._seen[request_hash] = seen + 1
        return random.Random(f"{self.faults.seed}:{request_hash}:{seen}")

    async def _chat(self, headers: dict, request: dict):
        faults = self.faults
        request_hash = headers.get(REQUEST_HASH_HEADER, "")
        rng = self._rng_for(request_hash)
        model = str(request.get("model", ""))
        if faults.api_key is not None and headers.get("authorization") != f"Bearer {faults.api_key}":
            sent = headers.get("authorization", "").removeprefix("Bearer ")
            self._record(request_hash, 401)
            message = f"Incorrect API key provided: {sent}. Check the key and try again."
            return 401, {"error": {"message": message, "type": "invalid_request_error"}}, {}
        if model.startswith("status-"):
            status = int(model.removeprefix("status-"))
            self._record(request_hash, status)
            return status, {"error": {"message": f"forced status {status} for {model}"}}, {}

        draw = rng.random()
        if self.faults.hold:
            self.stats.held += 1
            while self.faults.hold:
                await asyncio.sleep(0.02)
            self.stats.held -= 1
        if faults.latency_s or faults.jitter_s:
            await asyncio.sleep(faults.latency_s + rng.random() * faults.jitter_s)
        edges = [
            ("429", faults.p_429),
            ("500", faults.p_500),
            ("timeout", faults.p_timeout),
            ("truncated", faults.p_truncated),
            ("garbage", faults.p_garbage),
        ]
        fault, acc = None, 0.0
        for name, p in edges:
            acc += p
            if draw < acc:
                fault = name
                break

        if fault == "429":
            self._record(request_hash, 429)
            extra = {}
            if faults.retry_after_s is not None:
                # Integral seconds in Retry-After (the HTTP standard), the exact figure in retry-after-ms.
                extra = {
                    "retry-after": str(max(1, round(faults.retry_after_s))),
                    "retry-after-ms": str(int(faults.retry_after_s * 1000)),
                }
            return 429, {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}, extra
        if fault == "500":
            self._record(request_hash, 500)
            return 500, {"error": {"message": "The server had an error", "type": "server_error"}}, {}
        if fault == "timeout":
            self._record(request_hash, "timeout")
            await asyncio.sleep(faults.hang_s)
            return None

        messages = request.get("messages") or []
        finish = "stop"
        content = replies.garbage(model, rng) if fault == "garbage" else replies.answer(model, messages)
        if fault == "truncated":
            content, finish = content[: max(1, len(content) * 2 // 5)], "length"
        self._record(request_hash, fault or 200)
        prompt_tokens = sum(replies.approx_tokens(str(m.get("content", ""))) + 4 for m in messages) + 3
        completion_tokens = replies.approx_tokens(content)
        return (
            200,
            {
                "id": f"chatcmpl-{self.stats.requests}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": content}}
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
            {},
        )


class ServerThread:
    """Runs an LLMTestServer on its own event loop in a daemon thread (for tests in one process)."""

    def __init__(self, faults: Faults | None = None, port: int = 0, ssl_context: ssl.SSLContext | None = None):
        self.server = LLMTestServer(port=port, faults=faults, ssl_context=ssl_context)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="llm-test-server", daemon=True)

    def __enter__(self) -> "ServerThread":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return self.server.url

    def _call(self, fn, *args, **kwargs):
        async def run():
            return fn(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def configure(self, **changes) -> None:
        self._call(self.server.configure, **changes)

    def reset(self) -> None:
        self._call(self.server.reset)

    def stats(self) -> Stats:
        stats = self.server.stats
        return self._call(lambda: dataclasses.replace(stats, events=list(stats.events)))
