"""Running a model subprocess from a gpu worker: its log file, its lock, stopping it, reading its metrics.

The child writes to a log file, never to a pipe: nobody drains a pipe while the worker is busy polling, and
a full stderr pipe blocks the child forever. It runs in a session of its own (so a stop reaches the
launcher's own children too, e.g. accelerate/torchrun ranks) and is sent SIGTERM when the worker dies.
"""

import contextlib
import ctypes
import fcntl
import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

LOCK_NAME = "run.lock"
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the child when the worker that started it dies, so an orphan never trains on beside
    the job's next attempt (the trainer saves a checkpoint on SIGTERM). Elsewhere the output lock guards."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def output_lock(output_dir: Path) -> Iterator[int | None]:
    """An exclusive lock on the job's folder, or None when another process holds it. The child inherits
    the descriptor, so the lock lasts as long as anything of the run is alive, even an orphaned trainer:
    a second worker on this machine can then never start a second run into the same folder."""
    output_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(output_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        yield fd
    finally:
        os.close(fd)


class Child:
    """One subprocess with its output appended to a log file."""

    def __init__(self, argv: list[str], *, log_path: Path, cwd: Path, keep_fds: tuple[int, ...] = ()):
        self.log_path = log_path
        self.stopping_since: float | None = None
        with open(log_path, "ab") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=keep_fds,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def request_stop(self) -> None:
        """SIGTERM once; the trainer saves a checkpoint and exits 3."""
        if self.stopping_since is None and self.poll() is None:
            self.stopping_since = time.monotonic()
            self._signal_group(signal.SIGTERM)

    def enforce_grace(self, grace_s: float) -> None:
        """SIGKILL a child that ignored SIGTERM for longer than the grace period."""
        if self.stopping_since is not None and self.poll() is None and time.monotonic() - self.stopping_since > grace_s:
            logger.warning("pid %s ignored SIGTERM for %.0fs; killing it", self.proc.pid, grace_s)
            self._signal_group(signal.SIGKILL)

    def stop(self, grace_s: float) -> int:
        """Stop now and wait for the end (TERM, grace, KILL)."""
        self.request_stop()
        try:
            return self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            return self.proc.wait()


def log_tail(path: str | Path, max_bytes: int = 8192) -> str:
    """The end of a log file, from a line start, without reading the whole file."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return ""
    if size > max_bytes and b"\n" in data:
        data = data.split(b"\n", 1)[1]
    return data.decode("utf-8", errors="replace")


def _numbers(record: dict) -> Iterator[tuple[str, float]]:
    """The numeric metrics of one metrics.jsonl line; lists (e.g. MoS probabilities) become name.0, name.1…"""
    for name, value in record.items():
        if name == "step":
            continue
        values = enumerate(value) if isinstance(value, list) else [(None, value)]
        for index, item in values:
            if isinstance(item, bool) or not isinstance(item, int | float) or not math.isfinite(item):
                continue
            yield (name if index is None else f"{name}.{index}")[:64], float(item)


class MetricsTail:
    """Reads metrics.jsonl from a byte offset, whole lines only. The offset is stored with the rows it
    produced, so a job picked up by another worker reads on where the last one stopped."""

    def __init__(self, path: Path, offset: int = 0, max_bytes: int = 4 * 1024 * 1024):
        self.path, self.offset, self.max_bytes = path, offset, max_bytes

    def read(self) -> tuple[list[tuple[int, str, float]], int]:
        """(rows as (step, name, value), the offset after them). Call `advance` once they are stored."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return [], self.offset
        start = self.offset if size >= self.offset else 0  # a file rewritten from scratch: read it again
        if size == start:
            return [], start
        with open(self.path, "rb") as handle:
            handle.seek(start)
            data = handle.read(self.max_bytes)
        end = data.rfind(b"\n")
        if end < 0:
            return [], start  # half a line: wait for the rest
        rows = []
        for line in data[: end + 1].splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                step = int(record["step"])
            except (ValueError, KeyError, TypeError):
                logger.warning("skipping a malformed line in %s: %r", self.path, line[:200])
                continue
            rows.extend((step, name, value) for name, value in _numbers(record))
        return rows, start + end + 1

    def advance(self, offset: int) -> None:
        self.offset = offset

    def end_partial_line(self) -> None:
        """Before a new attempt appends: a trainer killed mid-write left half a line, which would otherwise
        swallow the new run's first line. Ending it makes it one malformed line, skipped."""
        try:
            with open(self.path, "rb+") as handle:
                if handle.seek(0, os.SEEK_END) == 0:
                    return
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":
                    handle.write(b"\n")
        except FileNotFoundError:
            pass
