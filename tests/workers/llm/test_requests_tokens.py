"""Request hashing, token counting and cost, key redaction, retry timing rules."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from workers.llm import tokens
from workers.llm.redaction import MASK, redact
from workers.llm.requests import PreparedRequest, merged_params
from workers.llm.retry import RetryPolicy, is_retryable_status, parse_retry_after
from workers.llm.types import EndpointConfig, MissingApiKey

MSGS = [{"role": "user", "content": "Name three rivers."}]


def test_the_hash_covers_model_messages_params_and_sample_only():
    base = PreparedRequest("gpt-x", MSGS, {"temperature": 0.7})
    assert (
        base.hash
        == PreparedRequest(
            "gpt-x",
            MSGS,
            {"temperature": 0.7},
            contract={"kind": "answer"},
            template={"id": "t", "version": 2},
            vars={"task": "x"},
        ).hash
    )
    assert (
        len(
            {
                base.hash,
                base.with_sample(1).hash,
                PreparedRequest("gpt-y", MSGS, {"temperature": 0.7}).hash,
                PreparedRequest("gpt-x", MSGS, {"temperature": 0.2}).hash,
                PreparedRequest("gpt-x", [{"role": "user", "content": "Name four rivers."}]).hash,
            }
        )
        == 5
    )


def test_the_hash_ignores_key_order_and_integral_floats_but_not_the_offline_backend():
    a = PreparedRequest("m", MSGS, {"temperature": 1, "max_tokens": 10})
    b = PreparedRequest("m", MSGS, {"max_tokens": 10.0, "temperature": 1.0})
    assert a.hash == b.hash
    assert a.hash != PreparedRequest("m", MSGS, a.params, backend="offline_replay").hash


def test_requests_survive_the_json_round_trip():
    request = PreparedRequest(
        "m",
        MSGS,
        {"top_p": 0.9},
        sample=3,
        backend="offline_replay",
        contract={"kind": "judge"},
        template={"id": "judge_pairwise", "version": 1},
        vars={"task": "t"},
    )
    again = PreparedRequest.from_json(request.to_json())
    assert again == request and again.hash == request.hash
    assert request.body() == {"top_p": 0.9, "model": "m", "messages": MSGS}


def test_request_params_override_defaults_and_none_removes_one():
    assert merged_params({"temperature": 0.7, "top_p": 1}, {"temperature": 0, "top_p": None}) == {"temperature": 0}


def test_the_approximation_leans_high_and_counts_non_ascii_per_character():
    assert tokens.approx_tokens("") == 0
    assert tokens.approx_tokens("hello world") == 3  # 2 words * 4/3 beats 11 chars / 4
    assert tokens.approx_tokens("x" * 400) == 100
    assert tokens.approx_tokens("数据蒸馏") == 4
    assert tokens.prompt_tokens(MSGS, "some-local-model") == tokens.approx_tokens(MSGS[0]["content"]) + 3 + 3


def test_estimates_bound_the_reply_by_max_tokens_or_the_assumption():
    est = tokens.estimate(MSGS, {"max_tokens": 200}, "m")
    assert (est.max_completion_tokens, est.expected_completion_tokens) == (200, 100)
    assert tokens.estimate(MSGS, {}, "m").max_completion_tokens == tokens.ASSUMED_MAX_COMPLETION
    assert tokens.estimate(MSGS, {"max_tokens": 200}, "m", expected_completion=30).expected_completion_tokens == 30
    assert tokens.cost(1_000_000, 500_000, Decimal("2"), Decimal("8")) == Decimal("6")


def test_the_key_is_read_from_the_environment_at_call_time(monkeypatch):
    config = EndpointConfig(name="e", base_url="http://x", model="m", api_key_env="TEST_RUNNER_API_KEY")
    monkeypatch.delenv("TEST_RUNNER_API_KEY", raising=False)
    with pytest.raises(MissingApiKey) as info:
        config.api_key()
    assert "TEST_RUNNER_API_KEY" in str(info.value)
    monkeypatch.setenv("TEST_RUNNER_API_KEY", "sk-live-abcdefghijklmnop")
    assert config.api_key() == "sk-live-abcdefghijklmnop"
    assert EndpointConfig(name="e", base_url="http://x", model="m").api_key() == "no-key"


def test_redaction_masks_the_key_its_fragments_and_key_shapes():
    key = "zz-9f8e7d6c5b4a39281706"
    text = redact(
        f"Incorrect API key provided: {key}. Or {key[:8]}***{key[-6:]}; Bearer abcdef123456; sk-proj-AAAABBBBCCCC", key
    )
    assert key not in text and key[:8] not in text and key[-6:] not in text
    assert "abcdef123456" not in text and "sk-proj-AAAABBBBCCCC" not in text
    assert text.count(MASK) >= 4
    assert redact("no secrets here", "no-key") == "no secrets here"


def test_retry_after_is_read_in_all_three_forms():
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    now = datetime(2026, 1, 1, tzinfo=UTC)
    date = (now + timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after({"retry-after": date}, now=now) == 30.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_backoff_is_jittered_exponential_and_retry_after_is_a_floor():
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    rng = random.Random(1)
    delays = [policy.delay(attempt, None, rng) for attempt in range(1, 8) for _ in range(50)]
    assert all(0 <= d <= 8.0 for d in delays) and len(set(delays)) > 100
    assert max(policy.delay(1, None, rng) for _ in range(200)) <= 1.0
    assert all(5.0 <= policy.delay(3, 5.0, rng) <= 5.51 for _ in range(200))


def test_which_statuses_are_retried():
    assert [s for s in (400, 401, 403, 404, 408, 409, 422, 425, 429, 500, 502, 503) if is_retryable_status(s)] == [
        408,
        409,
        425,
        429,
        500,
        502,
        503,
    ]


def test_run_sync_works_with_and_without_a_running_loop():
    import asyncio
    import threading

    from workers.llm.sync import run_sync

    async def answer():
        return 42

    async def inside_a_loop():
        return run_sync(answer)

    got = {}

    def in_a_fresh_thread():  # a thread whose loop is running when run_sync is called
        loop = asyncio.new_event_loop()
        got["plain"] = run_sync(answer)
        got["nested"] = loop.run_until_complete(inside_a_loop())
        loop.close()

    thread = threading.Thread(target=in_a_fresh_thread)
    thread.start()
    thread.join()
    assert got == {"plain": 42, "nested": 42}
