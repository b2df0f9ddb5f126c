"""`make run`'s script on a fresh var/ folder: it comes up, serves the login page, and stops on Ctrl-C."""

import os
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.smoke, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_script_starts_web_and_worker_and_stops_cleanly(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"}}
    env.update(RETORT_VAR_DIR=str(tmp_path), PORT=str(port), RETORT_ADMIN_PASSWORD="smoke-test-password-1")
    proc = subprocess.Popen(
        ["bash", "scripts/run.sh"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Retort is running at" in line or (not line and proc.poll() is not None):
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}/" in output, output
        assert "embedded mode" in output and "demo-self-instruct-seeds: 175 imported" in output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=10) as response:
            page = response.read().decode()
        assert response.status == 200 and "Log in to Retort" in page and "embedded mode" in page
        os.killpg(proc.pid, signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode in (0, 130), rest
        assert "Stopped." in rest
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
