"""HTTPS through the openai SDK's own transport, the way OpenAI and DashScope are reached: a local TLS
test server with a throwaway CA, trusted the standard way (SSL_CERT_FILE), and refused when it is not."""

import httpx2
import pytest

from tests.llm_server.server import ServerThread
from tests.llm_server.tls import make_certificates
from workers.llm.client import LLMClient, call_once
from workers.llm.requests import PreparedRequest
from workers.llm.retry import RetryPolicy
from workers.llm.sync import run_sync
from workers.llm.transport import LeanTransport
from workers.llm.types import FATAL, OK, CallJob, EndpointConfig

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
LONG_TEXT = "Rivers carry water to the sea; " * 400  # a body of many kilobytes, across TLS records and chunks


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_server(certificates):
    with ServerThread(ssl_context=certificates.server_context()) as running:
        yield running


@pytest.fixture
def trusted(monkeypatch, certificates):
    """The client trusts the test CA as it would a corporate one: SSL_CERT_FILE, read by httpx2 when the SDK
    builds its client. No proxy may stand between the test and its server."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))


def config(server, model="echo-a") -> EndpointConfig:
    return EndpointConfig(name="tls", base_url=server.url, model=model, timeout_s=10.0)


def call(cfg, text, policy=None):
    body = PreparedRequest(cfg.model, [{"role": "user", "content": text}]).body()

    async def main():
        async with LLMClient(cfg, policy=policy or RetryPolicy(max_attempts=1)) as client:
            transport = client._sdk._client._transport
            results = [await client.call(CallJob(i, body)) for i in range(3)]  # the second and third reuse it
            return transport, results

    return run_sync(main)


def test_https_goes_through_the_sdk_transport(tls_server, trusted):
    assert tls_server.url.startswith("https://127.0.0.1:")
    transport, results = call(config(tls_server), LONG_TEXT)
    assert isinstance(transport, httpx2.AsyncHTTPTransport) and not isinstance(transport, LeanTransport)
    assert [r.status for r in results] == [OK] * 3, [r.error for r in results]
    assert all(r.content == LONG_TEXT for r in results)
    assert tls_server.stats().chunked_replies == 0


def test_https_with_a_chunked_reply(tls_server, trusted):
    tls_server.configure(chunked=True)
    _transport, results = call(config(tls_server), LONG_TEXT)
    assert [r.status for r in results] == [OK] * 3, [r.error for r in results]
    assert all(r.content == LONG_TEXT and r.finish_reason == "stop" and r.prompt_tokens > 0 for r in results)
    assert tls_server.stats().chunked_replies == 3


def test_each_role_answers_over_https(tls_server, trusted):
    from workers.llm.contracts import check_reply

    for model, kind in (("judge-a", "judge"), ("rationale-a", "rationale"), ("classifier-a", "classifier")):
        result = run_sync(
            lambda m=model: call_once(
                config(tls_server, m), PreparedRequest(m, [{"role": "user", "content": "Hi"}]).body()
            )
        )
        assert result.status == OK and check_reply({"kind": kind}, result.content, result.finish_reason).valid


def test_an_untrusted_certificate_is_refused_with_a_clear_error(tls_server, monkeypatch, tmp_path):
    """Trusting another CA (as a client with only the public roots does) must fail verification: the call
    fails at once, says why, and the server never sees a request."""
    other_ca = make_certificates(tmp_path / "other", ca_name="Some other CA").ca_file
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca))
    _transport, results = call(
        config(tls_server), "Name a river.", policy=RetryPolicy(max_attempts=3, base_delay_s=0.01)
    )
    assert {r.status for r in results} == {FATAL}, [(r.status, r.error) for r in results]
    assert "certificate verify failed" in results[0].error.lower(), results[0].error
    assert "not trusted" in results[0].error and results[0].attempts == 1  # not retried: it cannot heal
    assert tls_server.stats().requests == 0
