"""The same batch as ThreadedBatch, with the event loop in a child process.

Why: in one interpreter the caller's work (reading pending calls, checking replies, writing the ledger)
and the event loop share the GIL, and a thread waking on socket events waits for it behind the caller.
At hundreds of calls a second that convoy, not the CPU, caps throughput. A child process gives the loop
an interpreter of its own. It is started with subprocess (not multiprocessing), so it works from a
daemonic Celery pool process too, and it inherits the environment, where it reads the API key.

Messages are length-prefixed pickles over the child's stdin/stdout; both ends are this module.
"""

import contextlib
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable

from workers.llm.batch import ThreadedBatch
from workers.llm.retry import RetryPolicy
from workers.llm.types import CallJob, CallResult, EndpointConfig

_HEADER = struct.Struct("!I")


def _write(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    return pickle.loads(stream.read(size))  # noqa: S301 - our own child process, over its private pipe


class ProcessBatch:
    def __init__(self, config: EndpointConfig, *, policy: RetryPolicy | None = None):
        self.config, self.policy = config, policy
        self._results: queue.Queue[CallResult] = queue.Queue()
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self.startup_error = ""

    def start(self) -> "ProcessBatch":
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "workers.llm.procbatch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=root,
        )
        _write(self._proc.stdin, (self.config, self.policy))
        self.startup_error = _read(self._proc.stdout)
        self._reader = threading.Thread(target=self._read_results, name="llm-batch-results", daemon=True)
        self._reader.start()
        return self

    def _read_results(self) -> None:
        with contextlib.suppress(EOFError, OSError, ValueError):
            while True:
                for result in _read(self._proc.stdout):
                    self._results.put(result)

    def submit(self, jobs: Iterable[CallJob]) -> None:
        jobs = list(jobs)
        if jobs:
            with self._lock:
                _write(self._proc.stdin, ("jobs", jobs))

    def results(self, *, wait_s: float = 0.05, min_items: int = 1) -> list[CallResult]:
        out: list[CallResult] = []
        deadline = time.monotonic() + wait_s
        while True:
            with contextlib.suppress(queue.Empty):
                while True:
                    out.append(self._results.get_nowait())
            remaining = deadline - time.monotonic()
            if len(out) >= min_items or remaining <= 0:
                return out
            try:
                out.append(self._results.get(timeout=remaining))
            except queue.Empty:
                return out

    def close(self, *, abort: bool = False, timeout: float | None = None) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        with contextlib.suppress(OSError, ValueError), self._lock:
            _write(self._proc.stdin, ("close", abort))
        try:
            self._proc.wait(timeout=timeout if timeout is not None else (10 if abort else None))
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._reader is not None:
            self._reader.join(5)


def _child() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    config, policy = _read(stdin)
    batch = ThreadedBatch(config, policy=policy).start()
    _write(stdout, batch.startup_error)
    done = threading.Event()

    def forward() -> None:
        # Results go back in small groups: one pipe write per group instead of one per call.
        while not done.is_set() or batch.pending():
            results = batch.results(wait_s=0.01, min_items=64)
            if results:
                _write(stdout, results)

    writer = threading.Thread(target=forward, daemon=True)
    writer.start()
    abort = True  # the parent vanished (a killed worker): send nothing more
    with contextlib.suppress(EOFError):
        while True:
            kind, payload = _read(stdin)
            if kind == "jobs":
                batch.submit(payload)
            else:
                abort = payload
                break
    batch.close(abort=abort)
    done.set()
    writer.join()


if __name__ == "__main__":
    _child()
