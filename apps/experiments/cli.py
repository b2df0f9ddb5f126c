"""What run_experiment needs besides the engine: a Celery worker for its own duration when none consumes
the queues, and a progress line (a bar on a terminal, plain lines otherwise)."""

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kombu.exceptions import KombuError

from config.modes import var_dir

log = logging.getLogger(__name__)


def queues_served(timeout: float = 1.0) -> set[str] | None:
    """The queues some running worker consumes; None when no worker answers a ping (or the broker cannot
    broadcast, as the embedded file-system broker cannot)."""
    from config.celery import app

    try:
        if not app.control.ping(timeout=timeout):
            return None
        active = app.control.inspect(timeout=timeout).active_queues() or {}
    except (NotImplementedError, OSError, KombuError) as exc:  # no broadcast here, or the broker is down
        log.info("No worker answered a ping: %s", exc)
        return None
    return {queue["name"] for queues in active.values() for queue in queues}


class OwnWorker:
    """A Celery worker process started for this command and stopped (TERM, then KILL) when it ends."""

    def __init__(self, queues: list[str]):
        self.queues = list(queues)
        folder = var_dir() / "log"
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = Path(folder / f"run_experiment-worker-{uuid.uuid4().hex[:6]}.log")
        self._log = self.log_path.open("w")
        command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(queues)]
        command += ["-P", "solo", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
        command += ["-n", f"run-experiment-{uuid.uuid4().hex[:6]}@%h"]
        self.proc = subprocess.Popen(
            command,
            cwd=Path(__file__).resolve().parents[2],
            env=dict(os.environ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches this command, which stops the worker itself
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


def ensure_workers(queues: list[str], *, ping_timeout: float = 1.0) -> list[OwnWorker]:
    """Start what is missing: one worker for default + llm, one solo worker for gpu (one job at a time)."""
    served = queues_served(ping_timeout) or set()
    missing = [q for q in queues if q not in served]
    workers = []
    cpu = [q for q in missing if q != "gpu"]
    if cpu:
        workers.append(OwnWorker(cpu))
    if "gpu" in missing:
        workers.append(OwnWorker(["gpu"]))
    return workers


def bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / total) if total else 0
    return "█" * filled + "░" * (width - filled)


def describe(progress: dict) -> str:
    experiment, round_, stage = progress["experiment"], progress["round"], progress["stage"]
    rounds = experiment.config.get("params", {}).get("rounds", 1)
    where = f"round {round_.index}/{rounds}" if round_ else "no open round"
    if stage is None:
        return f"{experiment.name}: {experiment.get_status_display()} ({where})"
    counts = f"{stage.done:,}/{stage.total:,}" + (f", {stage.failed:,} failed" if stage.failed else "")
    return f"{experiment.name}: {where} · {stage.name} [{stage.status}/{stage.phase}] {counts} · ${stage.cost:.4f}"


class ProgressPrinter:
    """Writes to a management command's OutputWrapper (self.stderr)."""

    def __init__(self, stream, tty: bool):
        self.stream, self.tty, self.last, self.last_at = stream, tty, "", 0.0

    def show(self, progress: dict) -> None:
        text = describe(progress)
        stage = progress["stage"]
        if self.tty:
            line = f"{bar(stage.done, stage.total)} {text}" if stage else text
            self.stream.write("\r\033[K" + line[:200], ending="")
            self.stream.flush()
        elif text != self.last and (time.monotonic() - self.last_at > 2 or _key(text) != _key(self.last)):
            self.stream.write(text)
            self.stream.flush()
            self.last_at = time.monotonic()
        self.last = text

    def end(self) -> None:
        if self.tty and self.last:
            self.stream.write("")
            self.last = ""


def _key(text: str) -> str:
    """A line's stage and status, without its counts: a change there is printed at once."""
    return text.split("]")[0]
