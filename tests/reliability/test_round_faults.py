"""Faults outside the workers while a Lion round runs on real Celery workers: the LLM provider failing 30 % of
its requests, the broker restarted (with and without persistence), the database dropping the workers'
connections, the production web server (gunicorn) killed and restarted while an operator watches the round
over HTTP. Each round must end exactly as the undisturbed round of the same config (every row it wrote,
compared by content), with every request answered once and recorded as one ledger row.

On PostgreSQL the workers and this process use a private redis-server as broker and cache, so a case can
kill it; on the embedded default only the provider's faults and the web server's restarts run (no broker
server, no database server).
"""

import signal
import time

import pytest
from django.db import connection
from django.urls import reverse

from apps.core.roles import Role
from apps.experiments.models import StageRun
from apps.llm.models import LLMCall, LLMCallUse
from apps.training.models import TrainingJob
from tests.factories import TEST_PASSWORD, UserFactory
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
    experiment_status,
    lion_round,
    replies_by_hash,
    rows_equal,
    sent_by_hash,
    start_workers,
    this_process_on,
    waiting_on_calls,
)
from tests.reliability.web import Client, WebServer, collect_static

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
    log_dir = tmp_path_factory.mktemp("faults")
    # The trainer goes on past step 2 only while this file exists: the web case removes it to hold a job.
    go = log_dir / "trainer-go"
    go.touch()
    holder = {"workers": start_workers(log_dir, broker and broker.url, FAKE_TRAINER_HOLD_FILE=go), "trainer_go": go}
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
    def during(experiment_id: int, _server) -> None:
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


DROP_EVERY_S, MAX_DROPS = 0.5, 16


def _drops_through(stages: tuple[str, ...], terminated: list[int], finished: list):
    """Drop the workers' connections every DROP_EVERY_S from the first stage's start until the last one is
    done, at most MAX_DROPS times: advances, the LLM runner and the training task each lose theirs mid-work.
    Notes, at each drop, the requests whose calls the ledger had finished. The drops are bounded because
    each one a task meets doubles its retry's wait (up to 30 s): drops without end would starve the round."""

    def during(experiment_id: int, _server) -> None:
        wait_for(lambda: _status(experiment_id, stages[0]) != "pending", 120, f"{stages[0]} to start")
        while _status(experiment_id, stages[-1]) != "done" and len(terminated) < MAX_DROPS:
            done = LLMCall.objects.filter(uses__experiment_id=experiment_id).exclude(status=LLMCall.Status.PENDING)
            finished.append((time.monotonic(), set(done.values_list("request_hash", flat=True))))
            terminated.append(_terminate_others())
            time.sleep(DROP_EVERY_S)

    return during


def _connections_lost(workers: dict) -> int:
    """How often the workers' tasks have logged a retry after losing their database connection."""
    return sum(proc.output().count("database connection") for proc in workers["workers"].procs)


def _status(experiment_id: int, stage: str) -> str:
    return StageRun.objects.get(round__experiment_id=experiment_id, name=stage).status


@needs_postgres
def test_database_connections_dropped_mid_stage_change_nothing(workers):
    reference = _reference(workers)
    terminated, finished = [], []
    during = _drops_through(("teacher_train", "judge"), terminated, finished)
    lost_before = _connections_lost(workers)
    result = lion_round(lambda: workers["workers"], "lion-db-dropped", during=during)
    rows_equal(result, reference, skip=())
    # Workers close their connection after each task, so a drop finds one only in a task at work (the count
    # is noise); the workers' log says whether one lost it mid-work and retried.
    lost = _connections_lost(workers) - lost_before
    assert lost > 0, f"no task lost its connection mid-work, nothing was tested (sessions dropped: {terminated})"
    # A call in flight when the runner lost its connection is asked again (its reply was never recorded);
    # a call the ledger had finished never is: no reply comes a second after a drop that saw it finished.
    for at, request_hash, outcome in result["events"]:
        if outcome == 200:
            assert not any(request_hash in done for seen, done in finished if seen < at - 1.0), "paid twice"
    assert set(sent_by_hash(result["events"])) == set(result["ledger"]), "one ledger row per request sent"
    again = [h for h, n in replies_by_hash(result["events"]).items() if n > 1]
    assert len(again) <= WINDOW * len(terminated), "only calls in flight at a drop are asked again"


# --- the web server restarted --------------------------------------------------------------------------------
def _page(client: Client, path: str, state) -> tuple[str, tuple]:
    """GET `path` until the database's `state()` was the same before and after the page was made (the
    workers may be writing); the page and that state. A 200, not the login page: the session holds."""
    deadline = time.monotonic() + 30
    while True:
        before = state()
        status, _, page = client.get(path)
        assert status == 200, f"GET {path}: {status}"
        if state() == before:
            return page, before
        assert time.monotonic() < deadline, f"{path}: the state kept changing under the page"


def _restart(web: WebServer, sig: int, workers: dict, experiment_id: int, client: Client) -> None:
    """Stop the web server with `sig` and start it again on its port; while it is down the workers carry
    on without it: alive, the round neither failed nor stuck, and the session cookie outlives it."""
    cookie, before = client.cookies["sessionid"], experiment_status(experiment_id)
    status = web.stop(sig)
    assert status == (0 if sig == signal.SIGTERM else -sig), f"gunicorn exited with {status} on {sig!r}"
    assert all(proc.proc.poll() is None for proc in workers["workers"].procs), "a worker died with the web server"
    assert experiment_status(experiment_id) == before
    assert not StageRun.objects.filter(round__experiment_id=experiment_id, status="failed").exists()
    web.start()
    assert client.cookies["sessionid"] == cookie
    assert Client(web.port).get(reverse("console:experiment", args=[experiment_id]))[0] == 302, "pages need login"


def _evaluate_held(experiment_id: int, server) -> bool:
    """The student's evaluation has sent its judge calls and the test server holds them."""
    run = StageRun.objects.get(round__experiment_id=experiment_id, name="evaluate")
    return run.status == "running" and run.phase == "wait" and server.stats().held > 0


def _restarts_through_training_and_evaluation(web: WebServer, workers: dict, user, seen: dict):
    """Sign in over HTTP; with the training job held at step 2, SIGKILL the web server; with the evaluate
    stage held between its calls, SIGTERM it, pause through the new server, SIGKILL it, resume. After
    each start the old session cookie shows the pages as the database has them."""

    def during(experiment_id: int, server) -> None:
        client = Client(web.port)
        client.login(user.username, TEST_PASSWORD)
        experiment_page = reverse("console:experiment", args=[experiment_id])
        job = wait_for(
            lambda: TrainingJob.objects.filter(round__experiment_id=experiment_id, status="running", steps=2).first(),
            120,
            "the training job to stand at step 2",
        )
        job_page = reverse("training:job", args=[job.pk])

        def job_state():
            return tuple(TrainingJob.objects.filter(pk=job.pk).values_list("status", "steps").get())

        for restart in (False, True):
            if restart:
                _restart(web, signal.SIGKILL, workers, experiment_id, client)
            for path in (experiment_page, job_page):
                page, (status, steps) = _page(client, path, job_state)
                assert (status, steps) == ("running", 2)
                assert 'data-testid="job-status" data-status="running"' in page
                assert (f'data-testid="job-steps">{steps}<' if path == experiment_page else f"<dd>{steps}</dd>") in page
        # The evaluation's judge calls are the next the server gets after training; held there, they stay
        # out however long the restarts take.
        server.configure(hold=True)
        workers["trainer_go"].touch()
        wait_for(lambda: _evaluate_held(experiment_id, server), 120, "evaluate to wait on its calls")

        def stage_state():
            return tuple(
                StageRun.objects.filter(round__experiment_id=experiment_id, name="evaluate")
                .values_list("status", "done", "total")
                .get()
            )

        for sig in (None, signal.SIGTERM):
            if sig:
                _restart(web, sig, workers, experiment_id, client)
            page, (status, done, total) = _page(client, experiment_page, stage_state)
            assert status == "running" and done < total
            assert 'data-stage="evaluate" data-status="running"' in page
            assert f'data-testid="stage-counts">{done}/{total}<' in page
        # An operator's action through the restarted server reaches the workers, and the next one's page
        # says what was done and by whom.
        pause = reverse("console:experiment-pause", args=[experiment_id])
        assert client.post_form(pause, pause, {})[0] == 302
        assert experiment_status(experiment_id) == "paused"
        _restart(web, signal.SIGKILL, workers, experiment_id, client)
        page, _ = _page(client, experiment_page, stage_state)
        assert f'data-testid="status-reason">Paused by {user.username}.<' in page
        assert 'data-stage="evaluate" data-status="paused"' in page
        resume = reverse("console:experiment-resume", args=[experiment_id])
        assert client.post_form(resume, resume, {})[0] == 302
        assert experiment_status(experiment_id) == "running"
        seen["restarts"] = web.starts - 1
        server.configure(hold=False)

    return during


def test_the_web_server_restarted_mid_training_and_mid_stage_changes_nothing(workers, tmp_path):
    reference = _reference(workers)
    user = UserFactory(role=Role.OPERATOR)
    logs = [proc.log_path for proc in workers["workers"].procs]
    offsets = [path.stat().st_size for path in logs]
    web = WebServer(tmp_path, **workers["workers"].env)
    collect_static(web.env)
    workers["trainer_go"].unlink()
    seen = {}
    try:
        web.start()
        during = _restarts_through_training_and_evaluation(web, workers, user, seen)
        result = lion_round(lambda: workers["workers"], "lion-web-restart", during=during)
    finally:
        workers["trainer_go"].touch()
        web.stop()
    assert seen["restarts"] == 3
    rows_equal(result, reference, skip=())
    assert_no_call_paid_twice(result)
    for path, offset in zip(logs, offsets, strict=True):  # and no task of the round failed or retried
        with path.open() as log:
            log.seek(offset)
            text = log.read()
        assert "ERROR" not in text and "Traceback" not in text, text[-3000:]
