"""Chunked replies (Transfer-Encoding: chunked, as vLLM and proxies send them) through the lean transport
that plain-http endpoints use; the HTTPS/SDK side is in test_tls_client.py."""

import asyncio

import pytest

from tests.llm_server.server import ServerThread
from workers.llm.client import LLMClient
from workers.llm.requests import PreparedRequest
from workers.llm.retry import RetryPolicy
from workers.llm.sync import run_sync
from workers.llm.transport import LeanTransport
from workers.llm.types import OK, CallJob, EndpointConfig

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


@pytest.fixture
def server(monkeypatch):
    for name in PROXY_VARS:  # a proxy would switch the client to the SDK's transport
        monkeypatch.delenv(name, raising=False)
    with ServerThread() as running:
        running.configure(chunked=True)
        yield running


def calls(server, texts, model="echo-a"):
    cfg = EndpointConfig(name="chunked", base_url=server.url, model=model, timeout_s=5.0, max_concurrency=4)
    jobs = [CallJob(i, PreparedRequest(model, [{"role": "user", "content": t}]).body()) for i, t in enumerate(texts)]

    async def main():
        async with LLMClient(cfg, policy=RetryPolicy(max_attempts=1)) as client:
            transport = client._sdk._client._transport
            return transport, await asyncio.gather(*(client.call(j) for j in jobs))

    return run_sync(main)


def test_chunked_replies_through_the_lean_transport(server):
    texts = ["x", "Name a river.", "Des fleuves coulent vers la mer — 海へ. " * 300]  # tiny, short, many kB
    texts = texts * 4  # twelve calls on four connections: kept-alive connections read chunk by chunk
    transport, results = calls(server, texts)
    assert isinstance(transport, LeanTransport)
    assert [r.status for r in results] == [OK] * len(texts), [r.error for r in results]
    assert [r.content for r in results] == texts
    assert all(r.finish_reason == "stop" and r.completion_tokens > 0 for r in results)
    assert server.stats().chunked_replies == len(texts)


def test_chunked_and_sized_replies_alternate_on_one_connection(server):
    """A chunked reply must be read to its last byte (the trailer too), or the next reply on the kept-alive
    connection would start mid-trailer."""
    cfg = EndpointConfig(name="chunked", base_url=server.url, model="echo-a", timeout_s=5.0, max_concurrency=1)

    async def main():
        async with LLMClient(cfg, policy=RetryPolicy(max_attempts=1)) as client:
            transport, outcomes = client._sdk._client._transport, []
            for i, chunked in enumerate((True, False, True, True, False)):
                server.configure(chunked=chunked)
                body = PreparedRequest("echo-a", [{"role": "user", "content": f"river {i}"}]).body()
                outcomes.append(await client.call(CallJob(i, body)))
            return [len(conns) for conns in transport._idle.values()], outcomes

    idle, results = run_sync(main)
    assert [(r.status, r.content) for r in results] == [(OK, f"river {i}") for i in range(5)]
    assert idle == [1], "every call reused the one connection"
    stats = server.stats()
    assert stats.chunked_replies == 3 and stats.connections == 1
