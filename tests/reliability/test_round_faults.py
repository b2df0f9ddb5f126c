"""Faults outside the workers while a Lion round runs on real Celery workers: the LLM provider failing 30 % of
its requests, the broker restarted (with and without persistence), the database dropping the workers'
connections. Each round must end exactly as the undisturbed round of the same config (every row it wrote,
compared by content), with every request answered once and recorded as one ledger row.

On PostgreSQL the workers and this process use a private redis-server as broker and cache, so a case can
kill it; on the embedded default only the provider's faults run (no broker server, no database server).
"""

import time

import pytest
from django.db import connection
from django.urls import reverse

from apps.experiments.models import StageRun
from apps.llm.models import LLMCall, LLMCallUse
from tests.integration.test_experiment_kill import (
    WINDOW,
    _migrated_rows_from_the_snapshot,  # noqa: F401 - autouse
)
from tests.integration.worker import wait_for
from tests.llm_server.server import Faults
from tests.reliability.harness import (
    LATENCY_S,
    ON_POSTGRES,
    REDIS_SERVER,
    RedisServer,
    assert_no_call_paid_twice,
    lion_round,
    replies_by_hash,
    rows_equal,
    sent_by_hash,
    start_workers,
    this_process_on,
    waiting_on_calls,
)

pytestmark = [pytest.mark.django_db(transaction=True, serialized_rollback=True), pytest.mark.slow]
needs_redis = pytest.mark.skipif(
    not (ON_POSTGRES and REDIS_SERVER),
    reason="needs PostgreSQL + Redis mode and the redis-server binary (the embedded broker is a folder, "
    "with no server to restart)",
)
needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES, reason="SQLite is a file opened by each process: there is no server connection to drop"
)

# 30 % of requests fail: rate limits, server errors, hangs past the client's timeout, and replies that break
# the role's contract. Drawn per request hash and attempt, so the same calls fail in every run.
FAULTS = Faults(
    latency_s=LATENCY_S,
    p_429=0.08,
    p_500=0.08,
    p_timeout=0.06,
    p_garbage=0.08,
    retry_after_s=0.05,
    hang_s=2.0,
    per_request=True,
    seed=7,
)
CLIENT_TIMEOUT_S = 1.0  # the endpoints' timeout_s: a hang costs a second, not the default two minutes


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """On PostgreSQL, a private redis-server as broker and cache for the workers and this process."""
    if not (ON_POSTGRES and REDIS_SERVER):
        yield None
        return
    redis = RedisServer(tmp_path_factory.mktemp("redis")).start()
    with this_process_on(redis.url):
        yield redis
    redis.stop()


@pytest.fixture(scope="module")
def workers(broker, tmp_path_factory):
    holder = {"workers": start_workers(tmp_path_factory.mktemp("faults"), broker and broker.url)}
    yield holder
    holder["workers"].stop()


_REFERENCE = {}


def _reference(workers) -> dict:
    if not _REFERENCE:
        result = lion_round(lambda: workers["workers"], "lion-undisturbed")
        assert_no_call_paid_twice(result)
        _REFERENCE.update(result)
    return _REFERENCE


def test_a_provider_failing_thirty_percent_of_requests_changes_nothing(workers, admin_client):
    reference = _reference(workers)
    result = lion_round(lambda: workers["workers"], "lion-faulty-llm", faults=FAULTS, timeout_s=CLIENT_TIMEOUT_S)
    rows_equal(result, reference)
    assert_no_call_paid_twice(result)
    outcomes = [outcome for _, _, outcome in result["events"]]
    faults = {kind: outcomes.count(kind) for kind in (429, 500, "timeout", "garbage")}
    assert all(faults.values()), f"every kind of fault happened: {faults}"
    # A garbage reply is stored as invalid and asked again as a fresh sample (its own request and row);
    # every other fault is a retry inside the call's one row.
    invalid = [call for call in result["ledger"].values() if call.status == LLMCall.Status.INVALID]
    assert len(invalid) == faults["garbage"]
    assert result["rows"]["calls"] == reference["rows"]["calls"] + faults["garbage"]
    retried = [call for call in result["ledger"].values() if call.attempts > 1]
    assert sum(call.attempts - 1 for call in retried) == faults[429] + faults[500] + faults["timeout"]
    assert len(replies_by_hash(result["events"])) == len(result["ledger"])
    # The experiment's costs page says what happened: the retried calls and the invalid replies.
    # The page counts uses (a call an experiment used twice, twice).
    uses = LLMCallUse.objects.filter(experiment=result["experiment"])
    page = admin_client.get(reverse("experiments:costs", args=[result["experiment"].pk])).content.decode()
    retried_uses = uses.filter(call__attempts__gt=1).count()
    assert retried_uses >= len(retried)
    assert f'data-testid="retried">{retried_uses} calls needed more than one attempt' in page
    assert f"{uses.filter(call__status=LLMCall.Status.INVALID).count()} invalid" in page


def _restart_broker_while_waiting(redis: RedisServer, stage: str):
    def during(experiment_id: int) -> None:
        wait_for(lambda: waiting_on_calls(experiment_id, stage), 120, f"{stage} to wait on its calls")
        redis.kill()
        time.sleep(1)  # the workers notice and try to reconnect
        redis.start()

    return during


@needs_redis
@pytest.mark.parametrize("appendonly", [False, True], ids=["no-persistence", "appendonly"])
def test_a_broker_restarted_mid_stage_changes_nothing(workers, broker, appendonly):
    reference = _reference(workers)
    broker.appendonly = appendonly
    broker.kill()
    broker.start()
    result = lion_round(
        lambda: workers["workers"],
        f"lion-broker-restart-{appendonly}",
        during=_restart_broker_while_waiting(broker, "judge"),
    )
    rows_equal(result, reference, skip=())
    assert_no_call_paid_twice(result)


def _terminate_others() -> int:
    """Terminate every other session on the test database (the workers'); how many there were."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _drops_through(stages: tuple[str, ...], terminated: list[int], finished: list):
    """Drop the workers' connections every few tenths of a second from the first stage's start until the
    last one is done: advances, the LLM runner and the training task each lose theirs mid-work. Notes, at
    each drop, the requests whose calls the ledger had finished."""

    def during(experiment_id: int) -> None:
        wait_for(lambda: _status(experiment_id, stages[0]) != "pending", 120, f"{stages[0]} to start")
        deadline = time.monotonic() + 120
        while _status(experiment_id, stages[-1]) != "done" and time.monotonic() < deadline:
            done = LLMCall.objects.filter(uses__experiment_id=experiment_id).exclude(status=LLMCall.Status.PENDING)
            finished.append((time.monotonic(), set(done.values_list("request_hash", flat=True))))
            terminated.append(_terminate_others())
            time.sleep(0.3)

    return during


def _status(experiment_id: int, stage: str) -> str:
    return StageRun.objects.get(round__experiment_id=experiment_id, name=stage).status


@needs_postgres
def test_database_connections_dropped_mid_stage_change_nothing(workers):
    reference = _reference(workers)
    terminated, finished = [], []
    during = _drops_through(("teacher_train", "judge"), terminated, finished)
    result = lion_round(lambda: workers["workers"], "lion-db-dropped", during=during)
    rows_equal(result, reference, skip=())
    assert sum(terminated) >= 10, f"the workers held connections to drop: {terminated}"
    # A call in flight when the runner lost its connection is asked again (its reply was never recorded);
    # a call the ledger had finished never is: no reply comes a second after a drop that saw it finished.
    for at, request_hash, outcome in result["events"]:
        if outcome == 200:
            assert not any(request_hash in done for seen, done in finished if seen < at - 1.0), "paid twice"
    assert set(sent_by_hash(result["events"])) == set(result["ledger"]), "one ledger row per request sent"
    again = [h for h, n in replies_by_hash(result["events"]).items() if n > 1]
    assert len(again) <= WINDOW * len(terminated), "only calls in flight at a drop are asked again"
