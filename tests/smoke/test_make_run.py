"""`make run`'s script on a fresh var/ folder: it comes up, serves the login page, logs the worker to
var/log/worker.log, and stops on Ctrl-C with status 0 and nothing left running, every time."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.smoke, pytest.mark.slow]
STARTS = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_leftovers(var_dir: Path) -> None:
    """After a failed check: the servers live in sessions of their own, so killing the script's group
    alone would leave them running."""
    for line in _processes_of_the_run(var_dir):
        with contextlib.suppress(OSError):  # gone meanwhile
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)


def _processes_of_the_run(var_dir: Path) -> list[str]:
    """Every live process started for this run, found by the var folder in its environment (the servers
    run in sessions of their own, so the script's process group would not find them)."""
    marker = f"RETORT_VAR_DIR={var_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("State:"))
            if "zombie" not in state:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append(f"{entry.name}: {command}")
        except (OSError, StopIteration):
            continue  # gone meanwhile, or not ours to read
    return found


def _start(env: dict) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        ["bash", "scripts/run.sh"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, like the foreground job Ctrl-C reaches
    )
    lines = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "Press Ctrl-C to stop." in line or (not line and proc.poll() is not None):
            break
    return proc, "".join(lines)


def test_run_script_starts_and_stops_cleanly_every_time(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"}}
    env.update(RETORT_VAR_DIR=str(tmp_path), PORT=str(port), RETORT_ADMIN_PASSWORD="smoke-test-password-1")
    worker_log = tmp_path / "log" / "worker.log"

    def _since(offset: int) -> str:
        return worker_log.read_text()[offset:] if worker_log.exists() else ""

    for attempt in range(STARTS):
        log_size_before = worker_log.stat().st_size if worker_log.exists() else 0
        proc, output = _start(env)
        try:
            assert f"http://127.0.0.1:{port}/" in output, output
            assert "embedded mode" in output and f"Logs: {tmp_path}/log/web.log, {tmp_path}/log/worker.log" in output
            if attempt == 0:
                assert "demo-self-instruct-seeds: 175 imported" in output, output
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10) as response:
                page = response.read().decode()
            assert response.status == 200 and "Log in to Retort" in page and "embedded mode" in page
            assert str(tmp_path) not in page  # the topology is for staff, not the public login page
            # make run serves with DEBUG off, so static files come hashed from collectstatic via WhiteNoise.
            css = re.search(r'href="(/static/[^"]+\.css)"', page).group(1)
            assert css != "/static/css/retort.css", "expected the hashed name of a collected file"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{css}", timeout=10) as response:
                assert response.status == 200 and b"--accent" in response.read()
            # The worker has logged its start-up into its own log, not into the terminal.
            # Wait for the line itself: other start-up output (Celery's warning about root) can come first.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "Retort is running in embedded mode" not in _since(log_size_before):
                time.sleep(0.2)
            assert "Retort is running in embedded mode" in _since(log_size_before)
            assert "celery@" not in output and "[tasks]" not in output

            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
            rest, _ = proc.communicate(timeout=60)
            assert proc.returncode == 0, rest  # so `make run` ends without "Error"
            assert "Stopped." in rest
        except BaseException:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            _kill_leftovers(tmp_path)
            raise
        survivors = _processes_of_the_run(tmp_path)
        _kill_leftovers(tmp_path)
        assert survivors == [], survivors
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
