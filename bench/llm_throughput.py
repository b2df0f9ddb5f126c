"""Throughput of the LLM gateway against the local test server, database writes included.

    python bench/llm_throughput.py [--calls 5000] [--latency 0.2] [--points 32,128] [--baseline-calls 50]

The test server runs in its own process and answers every call after `--latency` seconds, so a client
with concurrency c can at best finish c / latency calls per second. For each concurrency the script
queues `--calls` new calls for an experiment of its own, one use per item as a stage does (on an endpoint
and prompts of its own, so nothing comes from the cache) in the one test database the script creates for
its run (PostgreSQL when DATABASE_URL is set, else SQLite), then times the runner that sends them and
records every result in the ledger, and prints the ratio to that ideal. A sequential baseline (one call
at a time) is measured in the same run on fewer calls, since 5,000 calls one by one would take over 16
minutes. The first line printed is the first point's ratio,
`<N>% of ideal`. CPU per call is the runner's CPU time (client, its child process if it used one,
reply parsing and the database driver; not the test server's nor the database server's) per call.
"""

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
if not os.environ.get("DATABASE_URL"):
    # Keep the embedded mode's files away from a developer's var/.
    os.environ.setdefault("RETORT_VAR_DIR", str(ROOT / "var" / "bench"))
# Production settings do not record every SQL statement; the embedded default (DEBUG on) would.
os.environ.setdefault("DEBUG", "0")


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--latency", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"test server did not start: {line!r}")
    return proc, line.split()[-1]


def measure(url: str, concurrency: int, calls: int, tag: str) -> dict:
    from apps.llm.lease import lease_acquire, lease_release
    from apps.llm.models import LLMCall, LLMEndpoint
    from apps.llm.runner import run_endpoint
    from apps.llm.selectors import llm_request_for
    from apps.llm.services import llm_calls_enqueue
    from workers.llm.prompts import get_template

    endpoint = LLMEndpoint.objects.create(
        name=f"bench-{tag}", base_url=url, model="teacher-bench", max_concurrency=concurrency, timeout_s=30
    )
    template = get_template("teacher_answer")
    requests = [
        llm_request_for(endpoint, template, {"instruction": f"[{tag}] Explain topic number {i}."}) for i in range(calls)
    ]
    # As a stage queues them: for an experiment, one use per item (what the runner's feed reads back).
    from apps.datasets.models import Dataset
    from apps.experiments.models import Experiment

    experiment = Experiment.objects.create(
        name=f"bench-{tag}", recipe="lion", dataset=Dataset.objects.create(name=f"bench-{tag}"), status="running"
    )
    started = time.perf_counter()
    llm_calls_enqueue(
        endpoint=endpoint,
        requests=requests,
        purpose="bench",
        experiment_id=experiment.pk,
        stage="bench",
        items=[f"bench:{i}" for i in range(calls)],
        kick=False,
    )
    enqueue_s = time.perf_counter() - started
    owner = f"bench-{tag}"
    assert lease_acquire(endpoint_id=endpoint.pk, owner=owner, ttl_s=600)

    def cpu_now() -> float:  # this process and its finished children (the client's process, if used)
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + child.ru_utime + child.ru_stime

    cpu0, started = cpu_now(), time.perf_counter()
    summary = run_endpoint(endpoint, owner=owner)
    elapsed, cpu = time.perf_counter() - started, cpu_now() - cpu0
    lease_release(endpoint_id=endpoint.pk, owner=owner)
    ok = LLMCall.objects.filter(endpoint=endpoint, status="ok").count()
    if ok != calls or summary.sent != calls:
        raise RuntimeError(f"{tag}: {ok} of {calls} calls recorded ok ({summary})")
    return {
        "concurrency": concurrency,
        "calls": calls,
        "seconds": elapsed,
        "rate": calls / elapsed,
        "cpu_ms_per_call": 1000 * cpu / calls,
        "enqueue_s": enqueue_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--points", default="32,128", help="concurrency levels, comma-separated")
    parser.add_argument("--baseline-calls", type=int, default=50)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    server, url = start_server(args.latency)
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        rows = [measure(url, int(c), args.calls, f"c{c}") for c in args.points.split(",")]
        baseline = measure(url, 1, args.baseline_calls, "sequential")
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
        server.terminate()

    def ratio(row):
        return row["rate"] / (row["concurrency"] / args.latency)

    print(f"{100 * ratio(rows[0]):.1f}% of ideal")
    print(
        f"database: {connection.vendor} ({settings.RUN_MODE.name} mode); server latency {args.latency * 1000:.0f} ms;"
        f" python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    print(
        f"{'concurrency':>11} {'calls':>6} {'seconds':>8} {'calls/s':>8} {'ideal/s':>8} {'ratio':>7} "
        f"{'cpu ms/call':>11} {'enqueue s':>9}"
    )
    for row in [*rows, baseline]:
        ideal = row["concurrency"] / args.latency
        print(
            f"{row['concurrency']:>11} {row['calls']:>6} {row['seconds']:>8.2f} {row['rate']:>8.1f} {ideal:>8.0f} "
            f"{100 * ratio(row):>6.1f}% {row['cpu_ms_per_call']:>11.2f} {row['enqueue_s']:>9.2f}"
        )
    print(
        f"speed-up over the sequential baseline at concurrency {rows[0]['concurrency']}: "
        f"{rows[0]['rate'] / baseline['rate']:.1f}x"
    )


if __name__ == "__main__":
    main()
