"""The client against the local test server, over real sockets: answers, retries, limits, failures."""

import asyncio
import itertools
import os

import pytest

from tests.llm_server.server import ServerThread
from workers.llm.batch import ThreadedBatch
from workers.llm.client import LLMClient, call_once
from workers.llm.redaction import MASK
from workers.llm.requests import PreparedRequest
from workers.llm.retry import RetryPolicy
from workers.llm.sync import run_sync
from workers.llm.types import FAILED, FATAL, OK, CallJob, EndpointConfig

FAST = RetryPolicy(max_attempts=6, base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture
def server():
    with ServerThread() as running:
        yield running


def config(server, model="teacher-a", **kw) -> EndpointConfig:
    return EndpointConfig(name="test", base_url=server.url, model=model, **{"timeout_s": 5.0, **kw})


def job(key, model="teacher-a", text="Name a river.", request_hash=""):
    return CallJob(key, PreparedRequest(model, [{"role": "user", "content": text}]).body(), request_hash)


def run(cfg, jobs, policy=FAST):
    async def main():
        async with LLMClient(cfg, policy=policy) as client:
            return await asyncio.gather(*(client.call(j) for j in jobs))

    return run_sync(main)


def test_each_role_answers_in_its_contract(server):
    from workers.llm.contracts import check_reply

    contracts = {
        "teacher-a": {"kind": "answer"},
        "judge-a": {"kind": "judge"},
        "generator-a": {"kind": "generator"},
        "rationale-a": {"kind": "rationale"},
        "classifier-a": {"kind": "classifier"},
    }
    for model, contract in contracts.items():
        [result] = run(config(server, model), [job(1, model)])
        assert result.status == OK and result.prompt_tokens > 0 and result.completion_tokens > 0
        assert check_reply(contract, result.content, result.finish_reason).valid, (model, result.content)


def test_transient_failures_are_retried_until_answered(server):
    server.configure(p_500=0.3, p_429=0.2, retry_after_s=0.01, seed=3)
    results = run(config(server), [job(i, text=f"q{i}") for i in range(60)])
    assert all(r.status == OK for r in results)
    assert sum(r.attempts for r in results) > 60
    stats = server.stats()
    assert stats.by_status.get("500", 0) > 0 and stats.by_status.get("429", 0) > 0


def test_retry_after_is_honoured_before_the_next_attempt(server):
    server.configure(p_429=1.0, retry_after_s=0.3)
    [result] = run(config(server), [job(1, request_hash="a" * 64)], policy=RetryPolicy(max_attempts=3))
    assert (result.status, result.http_status, result.attempts) == (FAILED, 429, 3)
    times = [t for t, h, _ in server.stats().events if h == "a" * 64]
    assert len(times) == 3 and all(b - a >= 0.3 for a, b in itertools.pairwise(times))


def test_timeouts_are_retried_then_reported(server):
    server.configure(p_timeout=1.0, hang_s=5)
    [result] = run(config(server, timeout_s=0.2), [job(1)], policy=RetryPolicy(max_attempts=2, base_delay_s=0.01))
    assert (result.status, result.attempts) == (FAILED, 2)
    assert "timed out" in result.error and "2 attempts" in result.error


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_fail_at_once_without_a_retry(server, status):
    [result] = run(config(server, f"status-{status}"), [job(1, f"status-{status}")])
    assert (result.status, result.http_status, result.attempts) == (FATAL, status, 1)
    assert server.stats().requests == 1
    assert result.error.startswith(f"HTTP {status}")


def test_a_rejected_key_never_appears_in_the_error(server, monkeypatch):
    key = "sk-test-0123456789abcdefghij"
    monkeypatch.setenv("TEST_CLIENT_API_KEY", key)
    server.configure(api_key="the-right-key-000000")
    [result] = run(config(server, api_key_env="TEST_CLIENT_API_KEY"), [job(1)])
    assert (result.status, result.http_status) == (FATAL, 401)
    assert key not in result.error and key[:8] not in result.error and MASK in result.error


def test_the_right_key_is_sent_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("TEST_CLIENT_API_KEY", "the-right-key-000000")
    server.configure(api_key="the-right-key-000000")
    assert run(config(server, api_key_env="TEST_CLIENT_API_KEY"), [job(1)])[0].status == OK


def test_concurrency_never_exceeds_the_endpoint_limit(server):
    server.configure(latency_s=0.02)
    results = run(config(server, max_concurrency=5), [job(i, text=f"q{i}") for i in range(40)])
    assert all(r.ok for r in results)
    assert server.stats().max_in_flight == 5


def test_a_truncated_reply_comes_back_with_its_finish_reason(server):
    server.configure(p_truncated=1.0)
    [result] = run(config(server), [job(1)])
    assert (result.status, result.finish_reason) == (OK, "length")


def test_call_once_reports_a_missing_key_variable_by_name():
    os.environ.pop("UNSET_TEST_API_KEY", None)
    cfg = EndpointConfig(name="e", base_url="http://127.0.0.1:9/v1", model="m", api_key_env="UNSET_TEST_API_KEY")
    result = run_sync(lambda: call_once(cfg, {"model": "m", "messages": []}))
    assert result.status == FATAL and "UNSET_TEST_API_KEY" in result.error


def test_a_threaded_batch_takes_work_while_running_and_returns_every_result(server):
    server.configure(latency_s=0.005)
    batch = ThreadedBatch(config(server, max_concurrency=8), policy=FAST).start()
    try:
        batch.submit(job(i, text=f"a{i}") for i in range(50))
        got = batch.results(wait_s=5, min_items=10)
        batch.submit(job(i, text=f"b{i}") for i in range(50, 100))
        while len(got) < 100:
            more = batch.results(wait_s=5)
            assert more, "results stopped arriving"
            got += more
    finally:
        batch.close()
    assert sorted(r.key for r in got) == list(range(100)) and all(r.ok for r in got)


def test_an_aborted_batch_stops_quickly_and_drops_calls_in_flight(server):
    server.configure(latency_s=2.0)
    batch = ThreadedBatch(config(server, max_concurrency=4), policy=FAST).start()
    batch.submit(job(i, text=f"a{i}") for i in range(8))
    batch.close(abort=True, timeout=5)
    assert batch.results(wait_s=0.1) == []


def test_a_process_batch_runs_the_loop_in_a_child_and_returns_every_result(server):
    from workers.llm.procbatch import ProcessBatch

    server.configure(latency_s=0.002, p_500=0.1, seed=5)
    batch = ProcessBatch(config(server, max_concurrency=16), policy=FAST).start()
    try:
        assert batch.startup_error == ""
        batch.submit(job(i, text=f"p{i}") for i in range(200))
        got = []
        while len(got) < 200:
            more = batch.results(wait_s=10)
            assert more, "results stopped arriving"
            got += more
    finally:
        batch.close()
    assert sorted(r.key for r in got) == list(range(200)) and all(r.ok for r in got)
    assert batch._proc.returncode == 0


def test_a_process_batch_reports_a_missing_key_from_the_child(server, monkeypatch):
    from workers.llm.procbatch import ProcessBatch

    monkeypatch.delenv("CHILD_TEST_API_KEY", raising=False)
    batch = ProcessBatch(config(server, api_key_env="CHILD_TEST_API_KEY"), policy=FAST).start()
    try:
        assert "CHILD_TEST_API_KEY" in batch.startup_error
        batch.submit([job(1)])
        [result] = batch.results(wait_s=10)
    finally:
        batch.close()
    assert result.status == FATAL and server.stats().requests == 0
