"""Start a real Celery worker process against the test database and the configured broker."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.db import connection

from tests.conftest import REPO_ROOT


def worker_env(**extra) -> dict:
    env = dict(os.environ)
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        env["RETORT_SQLITE_PATH"] = str(settings["NAME"])
    else:
        user, host, port = settings["USER"], settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
        auth = f"{user}:{settings['PASSWORD']}@" if settings["PASSWORD"] else f"{user}@"
        env["DATABASE_URL"] = f"postgres://{auth}{host}:{port}/{settings['NAME']}"
    env.update({k: str(v) for k, v in extra.items()})
    return env


class WorkerProcess:
    def __init__(self, log_dir: Path, queues: str = "default", **env):
        self.log_path = log_dir / f"worker-{uuid.uuid4().hex[:8]}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                queues,
                "-P",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
                "-n",
                f"test-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=REPO_ROOT,
            env=worker_env(**env),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 60) -> "WorkerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.output():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.output()}")
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready in {timeout}s:\n{self.output()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def wait_for(predicate, timeout: float, what: str, worker: WorkerProcess | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"timed out waiting for {what}" + (f"\n{worker.output()[-3000:]}" if worker else ""))
