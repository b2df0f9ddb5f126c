"""The production web server as a process the test can kill, and a client that signs in over real HTTP.

The server is gunicorn serving config.wsgi with sync workers, as README's production section runs it, with
DEBUG off (static files from collectstatic's manifest through WhiteNoise) and behind an HTTPS proxy: the
client marks every request X-Forwarded-Proto: https, as the proxy would, so production's secure cookies,
HTTPS redirect and CSRF referer check are all in play. It runs in a session of its own so a SIGKILL takes
the master and its workers at once, as a machine that dies would; a SIGTERM is gunicorn's graceful stop.
"""

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from tests.conftest import REPO_ROOT
from tests.integration.worker import worker_env
from tests.reliability.harness import free_port

CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def collect_static(env: dict) -> None:
    """With DEBUG off every page names its static files through the manifest collectstatic writes."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


class WebServer:
    """gunicorn on one 127.0.0.1 port for its whole life: started, killed and started again on that port."""

    def __init__(self, log_dir: Path, **env):
        self.port, self.log_dir = free_port(), log_dir
        # The workers' database, broker and cache (the login limiter's counts and the jobs' progress live
        # in the cache); production's settings, not the test process's relaxed ones.
        self.env = worker_env(**env, DEBUG="0", SECURE_SSL_REDIRECT="1")
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> "WebServer":
        self.starts += 1
        log = (self.log_dir / f"gunicorn-{self.starts}.log").open("w")
        cmd = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "2"]
        self.proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # up when a worker answers, not when the port is bound
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.output()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if Client(self.port).get("/accounts/login/")[0] == 200:
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"gunicorn did not answer on {self.port} in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return (self.log_dir / f"gunicorn-{self.starts}.log").read_text()

    def stop(self, sig: int = signal.SIGKILL) -> int:
        """Send `sig` to the master and its workers (SIGKILL) or the master alone (SIGTERM: it stops its
        workers itself); the master's exit status."""
        if self.proc.poll() is None:
            if sig == signal.SIGKILL:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        status = self.proc.wait(30)
        with contextlib.suppress(ProcessLookupError):  # no worker outlives its master's group
            os.killpg(self.proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10  # the killed workers, reparented, let go of the socket as they exit
        while self.up():
            if time.monotonic() > deadline:
                raise TimeoutError(f"port {self.port} still answers after gunicorn stopped")
            time.sleep(0.05)
        return status

    def up(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
        return False


class Client:
    """A browser's share of HTTP: cookies kept by name (secure ones too: the proxy speaks HTTPS to the
    browser), the CSRF token from each form, no redirects followed."""

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, data: dict | None = None) -> tuple[int, dict, str]:
        headers = {"X-Forwarded-Proto": "https", "Host": f"127.0.0.1:{self.port}"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if data is not None:
            body = urlencode(data)
            # What a browser's form post carries; Django's CSRF check compares it with the host over HTTPS.
            headers.update(
                {"Content-Type": "application/x-www-form-urlencoded", "Referer": f"https://127.0.0.1:{self.port}{path}"}
            )
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode()
            for value in response.headers.get_all("Set-Cookie") or ():
                for name, morsel in SimpleCookie(value).items():
                    self.cookies[name] = morsel.value
            return response.status, dict(response.headers), text
        finally:
            conn.close()

    def get(self, path: str) -> tuple[int, dict, str]:
        return self.request("GET", path)

    def post_form(self, form_path: str, action: str, fields: dict) -> tuple[int, dict, str]:
        """GET the page with the form, then POST `fields` with its CSRF token to `action`."""
        status, _, page = self.get(form_path)
        assert status == 200, f"GET {form_path}: {status}"
        token = CSRF_FIELD.search(page).group(1)
        return self.request("POST", action, {"csrfmiddlewaretoken": token, **fields})

    def login(self, username: str, password: str) -> None:
        status, _, page = self.post_form(
            "/accounts/login/", "/accounts/login/", {"username": username, "password": password}
        )
        assert status == 302, f"login refused ({status}): {page[:500]}"
        assert "sessionid" in self.cookies
