"""What the fault tests share: a private redis-server they may kill, the test process pointed at it, and one
Lion round on real workers with a fault injected while it runs, compared with an undisturbed round.

The workers, the round's config and the row comparison are those of the SIGKILL tests
(tests/integration/test_experiment_kill.py); here the fault is something outside the workers: the LLM
provider, the broker, the database connection, the web server.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

from django.test import override_settings

from apps.experiments.models import Experiment, StageRun
from apps.experiments.services import experiment_create, experiment_start
from apps.llm.models import LLMCall
from tests.apps.experiments.rows import experiment_rows
from tests.integration.test_experiment_kill import Workers, _concurrency, _finished, _lion
from tests.llm_server.server import Faults, ServerThread

ON_POSTGRES = bool(os.environ.get("DATABASE_URL"))
REDIS_SERVER = shutil.which("redis-server")
LATENCY_S = 0.1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A redis-server of the test's own on a free port, killed and restarted on that port at will. With
    `appendonly` every write is fsynced to its append-only file, so a SIGKILL loses nothing it acknowledged;
    without, a restart comes back empty."""

    def __init__(self, workdir: Path, *, appendonly: bool = False):
        self.port, self.dir, self.appendonly = free_port(), workdir, appendonly
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence],
            cwd=self.dir,
            stdout=(self.dir / "redis.log").open("a"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return self
            time.sleep(0.05)
        raise TimeoutError(f"redis-server did not answer on {self.port}: {(self.dir / 'redis.log').read_text()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.kill()


@contextlib.contextmanager
def this_process_on(broker_url: str):
    """Point this process's Celery producer and Django cache at `broker_url` (the workers get it by
    environment), so the tasks the test queues and the wake-up keys it sets reach the same Redis."""
    from config.celery import app

    cache = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": broker_url}}
    before = app.conf.get("broker_write_url")
    with override_settings(CACHES=cache):
        # The write URL, because CELERY_BROKER_URL in the environment outranks a configured broker_url.
        app.conf.broker_write_url = broker_url
        app._after_fork()  # drops the connection pools built for the old URL
        try:
            yield
        finally:
            app.conf.broker_write_url = before
            app._after_fork()


def start_workers(log_dir: Path, broker_url: str | None = None, **env) -> Workers:
    workers = Workers(log_dir, log_dir / "training")
    if broker_url:
        workers.env.update(CELERY_BROKER_URL=broker_url, CACHE_URL=broker_url)
    workers.env.update({k: str(v) for k, v in env.items()})
    return workers.start()


def stage_runs(experiment_id: int) -> list[StageRun]:
    return list(StageRun.objects.filter(round__experiment_id=experiment_id).order_by("position"))


def waiting_on_calls(experiment_id: int, stage: str) -> bool:
    """The stage waits on its calls with some settled and some still out."""
    run = StageRun.objects.get(round__experiment_id=experiment_id, name=stage)
    return run.status == "running" and run.phase == "wait" and 0 < run.done < run.total


def lion_round(
    workers_of, name: str, *, faults: Faults | None = None, timeout_s: float | None = None, during=None
) -> dict:
    """One small Lion round (the SIGKILL tests' config) against its own test server; `during(experiment_id,
    server)` runs while it goes and injects the fault. `workers_of()` gives the workers serving it at the end (a
    fault may replace them). Returns the round's rows, the server's events, the ledger and the experiment."""
    with ServerThread(faults or Faults(latency_s=LATENCY_S)) as server:
        config = _concurrency(_lion(server, name))
        if timeout_s is not None:
            for endpoint in config["endpoints"].values():
                endpoint["timeout_s"] = timeout_s
        experiment = experiment_create(config=config)
        experiment_start(experiment_id=experiment.pk, auto_approve=True)
        if during is not None:
            during(experiment.pk, server)
        experiment = _finished(experiment.pk, workers_of(), timeout=180)
        events = server.stats().events
        ledger = {
            call.request_hash: call
            for call in LLMCall.objects.filter(uses__experiment=experiment, endpoint__base_url=server.url).distinct()
        }
    return {"rows": experiment_rows(experiment), "events": events, "ledger": ledger, "experiment": experiment}


def sent_by_hash(events) -> Counter:
    """Requests the server received, per request hash (every attempt, whatever it answered)."""
    return Counter(request_hash for _, request_hash, _ in events)


def replies_by_hash(events) -> Counter:
    """Replies the server completed (what a provider bills), per request hash."""
    return Counter(request_hash for _, request_hash, outcome in events if outcome in (200, "garbage"))


def assert_no_call_paid_twice(result: dict) -> None:
    """Each request the server answered was answered once and never asked again after that answer, and has
    one ledger row; faults before the answer are that row's attempts, not rows of their own."""
    events, ledger = result["events"], result["ledger"]
    replies = replies_by_hash(events)
    assert set(sent_by_hash(events)) == set(ledger), "every request sent has its one ledger row, and every row was sent"
    assert all(n == 1 for n in replies.values()), f"answered twice: {[h for h, n in replies.items() if n > 1]}"
    last = {request_hash: outcome for _, request_hash, outcome in events}
    assert all(last[h] in (200, "garbage") for h in ledger), "a request was sent again after its answer"
    for request_hash, call in ledger.items():
        assert call.status != LLMCall.Status.PENDING
        assert call.attempts == sent_by_hash(events)[request_hash], f"{call.attempts} attempts recorded for {call.pk}"


def rows_equal(result: dict, reference: dict, *, skip=("calls", "uses")) -> None:
    for key in reference["rows"]:
        if key not in skip:
            assert result["rows"][key] == reference["rows"][key], f"{key} differs from the undisturbed round"


def experiment_status(experiment_id: int) -> str:
    return Experiment.objects.get(pk=experiment_id).status
