"""A lean HTTP/1.1 transport for the openai SDK's httpx2 client, on plain asyncio streams.

Why: on a small machine httpcore's general-purpose connection machinery costs about 2 ms of CPU per call,
which caps one worker at a few hundred calls per second. A self-hosted model server on the local network
(vLLM, llama.cpp, Ollama) answers faster than that, so the client would be the bottleneck. This transport
does only what such a server needs: keep-alive connections, Content-Length and chunked bodies, timeouts.
httpx2 still builds the request and decodes the body (gzip and friends); the SDK still does auth, headers
and error mapping.

It is used for `http://` endpoints when no proxy is configured (see client.py); HTTPS endpoints go
through the SDK's default transport, where TLS, HTTP proxies and connection pooling are battle-tested,
and a remote provider's latency dwarfs the client's overhead anyway.
"""

import asyncio
import contextlib
from collections import defaultdict

import httpx2

_HEAD_LIMIT = 1 << 20  # largest response head we accept


class _StaleConnection(Exception):
    """A kept-alive connection that the server had already closed; safe to retry on a new one."""


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @property
    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


def _header_value(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers, then the blank line
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


class LeanTransport(httpx2.AsyncBaseTransport):
    def __init__(self, *, max_idle_per_host: int = 1024):
        self._idle: dict[tuple, list[_Connection]] = defaultdict(list)
        self._max_idle = max_idle_per_host

    async def _connect(self, key: tuple, connect_timeout: float | None, request) -> _Connection:
        _scheme, host, port = key
        try:
            async with asyncio.timeout(connect_timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=_HEAD_LIMIT)
        except TimeoutError as exc:
            raise httpx2.ConnectTimeout(f"connecting to {host}:{port} timed out", request=request) from exc
        except OSError as exc:
            raise httpx2.ConnectError(
                f"cannot connect to {host}:{port}: {exc.strerror or exc}", request=request
            ) from exc
        return _Connection(reader, writer)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx2.UnsupportedProtocol("the lean transport speaks plain http only", request=request)
        key = (url.scheme, url.host, url.port or 80)
        timeouts = request.extensions.get("timeout") or {}
        body = await request.aread()
        head = b"".join(
            [request.method.encode(), b" ", url.raw_path, b" HTTP/1.1\r\n"]
            + [k + b": " + v + b"\r\n" for k, v in request.headers.raw]
            + [b"\r\n"]
        )
        for _ in range(2):
            idle = self._idle[key]
            while idle and not idle[-1].usable:
                idle.pop().close()
            reused = bool(idle)
            conn = idle.pop() if reused else await self._connect(key, timeouts.get("connect"), request)
            try:
                status, reason, headers, content, keep = await self._exchange(
                    conn, head + body, timeouts.get("read"), request
                )
            except _StaleConnection:
                conn.close()
                if reused:
                    continue
                raise httpx2.RemoteProtocolError(
                    "server closed the connection without answering", request=request
                ) from None
            except BaseException:
                conn.close()
                raise
            if keep and len(self._idle[key]) < self._max_idle:
                self._idle[key].append(conn)
            else:
                conn.close()
            return httpx2.Response(
                status,
                headers=headers,
                stream=httpx2.ByteStream(content),
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason},
            )
        raise httpx2.RemoteProtocolError("server keeps closing connections", request=request)

    async def _exchange(self, conn: _Connection, data: bytes, read_timeout: float | None, request):
        reader = conn.reader
        try:
            conn.writer.write(data)
            async with asyncio.timeout(read_timeout):
                await conn.writer.drain()
                try:
                    raw_head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError as exc:
                    if not exc.partial:
                        raise _StaleConnection from exc
                    raise
                lines = raw_head[:-4].split(b"\r\n")
                version, status_text, *rest = lines[0].split(b" ", 2)
                status = int(status_text)
                headers = []
                for line in lines[1:]:
                    name, _, value = line.partition(b":")
                    headers.append((name.strip(), value.strip()))
                length = _header_value(headers, b"content-length")
                encoding = (_header_value(headers, b"transfer-encoding") or b"").lower()
                closing = (_header_value(headers, b"connection") or b"").lower() == b"close"
                keep = version == b"HTTP/1.1" and not closing
                if request.method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                    content = b""
                elif b"chunked" in encoding:
                    content = await _read_chunked(reader)
                elif length is not None:
                    content = await reader.readexactly(int(length))
                else:
                    content, keep = await reader.read(), False
        except _StaleConnection:
            raise
        except TimeoutError as exc:
            raise httpx2.ReadTimeout("timed out waiting for the server's reply", request=request) from exc
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            raise httpx2.ReadError(f"connection lost: {type(exc).__name__}", request=request) from exc
        except (ValueError, IndexError) as exc:
            raise httpx2.RemoteProtocolError("malformed HTTP response", request=request) from exc
        return status, rest[0] if rest else b"", headers, content, keep

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                with contextlib.suppress(Exception):
                    conn.close()
        self._idle.clear()
