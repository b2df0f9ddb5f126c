"""Load benchmark: reviewers and API clients against the production web server (gunicorn on PostgreSQL)
with 200,000 instructions and their review backlog, driven by locust from a second process.

    make bench-load                       # installs locust into .venv-load, then runs this
    .venv/bin/python bench/load.py [--size 200000] [--db retort_loadbench] [--workers 4]
        [--browsers 12] [--api-reviewers 4] [--api-readers 8] [--spawn-rate 4] [--seconds 90]
        [--think-scale 1.0] [--rounds 0] [--light-seconds 30] [--locust .venv-load/bin/locust]
        [--json bench/out/load.json] [--note "what else ran"]

The data is bench/review_queue_data.py's (built once per database and size, reused afterwards, the
queues reset at each run). This process prepares the database, writes the plan (accounts, session
cookies, tokens, ids: $RETORT_VAR_DIR/load/*_plan.json), collects the static files, starts gunicorn on a free
port of 127.0.0.1, warms its workers, runs a short light-load pass (one user of each kind, no think
time: the server nearly alone), then locust headless for a fixed user count, spawn rate and run time, and prints
throughput, p50/p95/p99 and errors per route group (bench/load_mix.py names the groups), with the
server's own count of 5xx answers from its access log and the double-claim check of the queues.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from _setup import OUT, REPO, machine

SEARCH_WORDS = ("photosynthesis", "climate change", "recipe", "sentence")
API_READERS = [f"bench-api-{i:02d}" for i in range(1, 41)]
PCTS = ("p50", "p95", "p99")


def make_plan(
    host: str, *, browsers: int, api_reviewers: int, api_readers: int, think_s: dict, seed=1, rounds: int = 0
) -> dict:
    """The accounts the users log in as, and the ids their requests pick from (Django set up on the
    bench database). Browser reviewers get a real session (the session engine's own rows, as a login
    makes them); API clients a token. The reviewers are spread over the rounds waiting for review (the
    first `rounds` of them; 0: all)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db.models import Max, Min
    from django.test import Client
    from rest_framework.authtoken.models import Token
    from review_queue_data import CATEGORIES, DATASET, REVIEWERS

    from apps.core.roles import Role
    from apps.core.services import user_grant_role
    from apps.datasets.models import Dataset
    from apps.experiments.models import Round

    if browsers + api_reviewers > len(REVIEWERS) or api_readers > len(API_READERS):
        raise SystemExit(f"at most {len(REVIEWERS)} reviewers in all and {len(API_READERS)} API readers")
    User = get_user_model()
    dataset = Dataset.objects.get(name=DATASET)
    waiting = list(Round.objects.filter(status=Round.Status.WAITING_REVIEW).order_by("pk"))
    scopes = [{"experiment": r.experiment_id, "round": r.pk} for r in waiting[: rounds or None]]

    def session(name):
        client = Client()
        client.force_login(User.objects.get(username=name))
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    def token(name):
        return Token.objects.get_or_create(user=User.objects.get(username=name))[0].key

    for name in API_READERS[:api_readers]:
        if not User.objects.filter(username=name).exists():
            User.objects.create_user(name, password=None)
            user_grant_role(username=name, role=Role.VIEWER)
    team = REVIEWERS[: browsers + api_reviewers]
    ids = dataset.instructions.aggregate(lo=Min("pk"), hi=Max("pk"))
    return {
        "host": host,
        "seed": seed,
        "size": dataset.instructions.count(),
        "dataset": dataset.pk,
        "instruction_ids": [ids["lo"], ids["hi"]],
        "categories": list(CATEGORIES),
        "search_words": list(SEARCH_WORDS),
        "experiments": sorted({r.experiment_id for r in waiting}),
        "session_cookie": settings.SESSION_COOKIE_NAME,
        "counts": {"browsers": browsers, "api_reviewers": api_reviewers, "api_readers": api_readers},
        "think_s": think_s,
        "browsers": [
            {"username": n, "session": session(n), "scope": scopes[i % len(scopes)]}
            for i, n in enumerate(team[:browsers])
        ],
        "api_reviewers": [
            {"username": n, "token": token(n), "scope": scopes[i % len(scopes)]}
            for i, n in enumerate(team[browsers:], start=browsers)
        ],
        "api_readers": [{"username": n, "token": token(n)} for n in API_READERS[:api_readers]],
    }


# --- the results table ----------------------------------------------------------------------------------
def table(rows: list[dict], seconds: float, light: list[dict] | None = None) -> str:
    """Markdown: per route group its requests, throughput, p50/p95/p99 (ms) and failures, then the total;
    with `light`, the p50 of the light-load run beside them."""
    alone = {r["group"]: r["p50"] for r in light or ()}
    extra = (" p50 ms, light load |", "---:|") if light else ("", "")
    out = [f"| route group | requests | req/s | p50 ms | p95 ms | p99 ms | failed |{extra[0]}",
           f"|---|---:|---:|---:|---:|---:|---:|{extra[1]}"]  # fmt: skip
    for r in rows:
        pcts = " | ".join(f"{r[p]:,.0f}" for p in PCTS)
        line = f"| {r['group']} | {r['n']:,} | {r['n'] / seconds:.1f} | {pcts} | {r['failed']} |"
        if light:
            line += f" {alone[r['group']]:,.0f} |" if r["group"] in alone else " – |"
        out.append(line)
    return "\n".join(out)


def from_locust_csv(prefix: Path) -> tuple[list[dict], list[dict]]:
    """(rows by group with the aggregate last, failures) from locust's --csv files."""
    import csv

    rows = []
    with open(f"{prefix}_stats.csv", newline="") as f:
        for r in csv.DictReader(f):
            name = "all requests" if r["Name"] == "Aggregated" else r["Name"]
            rows.append({"group": name, "n": int(r["Request Count"]), "failed": int(r["Failure Count"]),
                         "p50": float(r["50%"]), "p95": float(r["95%"]), "p99": float(r["99%"]),
                         "max": float(r["Max Response Time"])})  # fmt: skip
    with open(f"{prefix}_failures.csv", newline="") as f:
        failures = [
            {"group": r["Name"], "error": r["Error"], "count": int(r["Occurrences"])} for r in csv.DictReader(f)
        ]
    return rows, failures


def ordered(rows: list[dict]) -> list[dict]:
    """The groups in load_mix's order, the total last."""
    from load_mix import GROUPS

    rank = {g: i for i, g in enumerate(GROUPS)}
    return sorted(rows, key=lambda r: rank.get(r["group"], len(GROUPS)))


# --- the server and the client --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, workers: int, logs: Path) -> subprocess.Popen:
    """gunicorn as README's production section runs it (sync workers), on 127.0.0.1 only."""
    access = logs / "access.log"
    access.unlink(missing_ok=True)
    cmd = [str(REPO / ".venv" / "bin" / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
           "--workers", str(workers), "--access-logfile", str(access),
           "--access-logformat", "%(s)s %(m)s %(U)s"]  # fmt: skip
    env = {**os.environ, "DEBUG": "0"}
    with open(logs / "gunicorn.log", "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=err, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}; see {logs / 'gunicorn.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.3)
    stop(proc)
    raise SystemExit("gunicorn did not listen within 60 s")


def stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def warm_up(port: int, plan: dict, workers: int) -> int:
    """Every gunicorn worker loads Django and its templates on its first requests (about a second each
    on this machine): answer a few reads per worker before the clock starts, as a server that has been
    up a while would. Returns how many requests that took."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.request import Request, urlopen

    token = plan["api_readers"][0]["token"] if plan["api_readers"] else plan["api_reviewers"][0]["token"]
    cookie = f"{plan['session_cookie']}={plan['browsers'][0]['session']}" if plan["browsers"] else ""
    reads = [(f"/api/v1/instructions/?dataset={plan['dataset']}", {"Authorization": f"Token {token}"}),
             ("/api/v1/experiments/", {"Authorization": f"Token {token}"}),
             ("/review/verdict/table/", {"Cookie": cookie}), ("/review/", {"Cookie": cookie})]  # fmt: skip

    def read(i):
        path, headers = reads[i % len(reads)]
        with urlopen(Request(f"http://127.0.0.1:{port}{path}", headers={**headers, "X-Forwarded-Proto": "https"})):
            pass

    n = 4 * workers * len(reads)
    with ThreadPoolExecutor(2 * workers) as pool:
        list(pool.map(read, range(n)))
    return n


def server_5xx(logs: Path) -> dict[str, int]:
    """5xx answers by path, from gunicorn's access log (what the server says, whatever the client saw)."""
    found: dict[str, int] = {}
    path = logs / "access.log"
    for line in path.read_text().splitlines() if path.exists() else ():
        status, _, rest = line.partition(" ")
        if status.startswith("5"):
            found[rest] = found.get(rest, 0) + 1
    return found


def run_locust(locust: str, plan: dict, port: int, prefix: Path, spawn_rate: float, seconds: int):
    """One headless locust run of the plan's users; (rows by group, failures, wall seconds)."""
    plan_path = prefix.with_name(prefix.name + "_plan.json")
    plan_path.write_text(json.dumps(plan))
    cmd = [locust, "-f", str(REPO / "bench" / "locustfile.py"), "--headless", "--host", f"http://127.0.0.1:{port}",
           "--users", str(sum(plan["counts"].values())), "--spawn-rate", str(spawn_rate), "--run-time", f"{seconds}s",
           "--stop-timeout", "15", "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING",
           "--exit-code-on-error", "0"]  # fmt: skip
    # The locust process gets a clean environment: its own venv, nothing of Retort's settings.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), "LOAD_PLAN": str(plan_path)}
    started = time.time()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, timeout=seconds + 120)
    rows, failures = from_locust_csv(prefix)
    return ordered(rows), failures, time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=200_000, help="instructions (a multiple of 4)")
    parser.add_argument("--db", default="retort_loadbench", help="the bench database (built once, then reused)")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--browsers", type=int, default=12, help="reviewers in the browser")
    parser.add_argument("--api-reviewers", type=int, default=4, help="reviewers through the API")
    parser.add_argument("--api-readers", type=int, default=8, help="API clients with a viewer's token")
    parser.add_argument("--spawn-rate", type=float, default=4.0, help="users started per second")
    parser.add_argument("--seconds", type=int, default=90, help="locust's run time")
    parser.add_argument("--think-scale", type=float, default=1.0, help="times the think time (0: none, a stress run)")
    parser.add_argument("--rounds", type=int, default=0, help="reviewers share the first N open rounds (0: all)")
    parser.add_argument("--light-seconds", type=int, default=30, help="the light-load run first (0: none)")
    parser.add_argument("--locust", default=str(REPO / ".venv-load" / "bin" / "locust"))
    parser.add_argument("--json", default=str(OUT / "load.json"))
    parser.add_argument("--note", default="", help="what else ran on the machine")
    args = parser.parse_args()
    if not Path(args.locust).exists():
        raise SystemExit(f"no locust at {args.locust}: run `make bench-load`, which installs it into .venv-load")
    from review_queue import prepare_database

    url, marker, built = prepare_database(args.size, args.rebuild, name=args.db)
    from django.core.management import call_command
    from review_queue_data import reviews_max_ids

    logs = Path(os.environ["RETORT_VAR_DIR"]) / "load"
    logs.mkdir(parents=True, exist_ok=True)
    call_command("collectstatic", interactive=False, verbosity=0)  # DEBUG off serves the manifest's files
    port = free_port()
    # Seconds each user waits between steps (a reviewer reads the item; a script paces itself).
    think = {"browsers": [1.0 * args.think_scale, 3.0 * args.think_scale],
             "api": [0.5 * args.think_scale, 1.5 * args.think_scale]}  # fmt: skip
    plan = make_plan(f"127.0.0.1:{port}", browsers=args.browsers, api_reviewers=args.api_reviewers,
                     api_readers=args.api_readers, think_s=think, rounds=args.rounds)  # fmt: skip
    before = reviews_max_ids(url)
    from django.db import connections

    connections.close_all()
    server = start_gunicorn(port, args.workers, logs)
    light = None
    try:
        warmed = warm_up(port, plan, args.workers)
        if args.light_seconds:  # one user of each kind, no think time: the server's latency nearly alone
            counts = {kind: min(1, n) for kind, n in plan["counts"].items()}
            light_plan = {**plan, "counts": counts, "think_s": {"browsers": [0, 0], "api": [0, 0]}}
            light, _, _ = run_locust(args.locust, light_plan, port, logs / "light", 3, args.light_seconds)
        (logs / "access.log").write_text("")  # the 5xx count is the main run's own
        load_before = os.getloadavg()
        rows, failures, wall = run_locust(args.locust, plan, port, logs / "locust", args.spawn_rate, args.seconds)
    finally:
        stop(server)
    import review_queue_load as rq

    checks = rq.double_claims(before["assignment"], before["verdict"], {})
    errors_5xx = server_5xx(logs)
    report(args, marker, built, rows, failures, errors_5xx, checks, load_before, wall, warmed, light)
    result = {"args": vars(args), "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"),
              "load_average_before": load_before, "load_average_after": os.getloadavg(), "wall_s": round(wall, 1),
              "rows": rows, "failures": failures, "server_5xx": errors_5xx, "checks": checks,
              "marker": marker, "built": built, "warm_up_requests": warmed,
              "light_load": light, "table": table(rows, args.seconds, light)}  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    print(f"\nwritten: {args.json}")
    if failures or errors_5xx or checks["tasks_over_required"] or checks["votes_twice_by_one_reviewer"]:
        raise SystemExit("the run had failed requests, 5xx answers or double claims (above)")


def report(args, marker, built, rows, failures, errors_5xx, checks, load_before, wall, warmed, light) -> None:
    size = marker["size"]
    users = args.browsers + args.api_reviewers + args.api_readers
    print(f"\nmachine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}; load average before {load_before[0]:.2f},"
          f" after {os.getloadavg()[0]:.2f}{'; ' + args.note if args.note else ''}")  # fmt: skip
    print(f"data: {size:,} instructions, {2 * size:,} judgments, {4 * size:,} answers, {size:,} verdict tasks"
          f" ({'built this run' if built else 'reused'}, load {marker['load_s']} s)")  # fmt: skip
    print(f"server: gunicorn, {args.workers} sync workers, PostgreSQL; client: locust, {users} users"
          f" ({args.browsers} browser reviewers, {args.api_reviewers} API reviewers, {args.api_readers} API readers),"
          f" spawn rate {args.spawn_rate}/s, run time {args.seconds} s (wall {wall:.0f} s)"
          f" after {warmed} warm-up reads; think time x{args.think_scale}\n")  # fmt: skip
    if light:
        print(f"light load: one user of each kind, no think time, {args.light_seconds} s, before the run\n")
    print(table(rows, args.seconds, light))
    print(f"\nfailed requests: {sum(f['count'] for f in failures)}")
    for f in failures:
        print(f"  {f['count']:>5} x {f['group']}: {f['error']}")
    print(f"5xx in the server's access log: {sum(errors_5xx.values())}")
    for path, n in sorted(errors_5xx.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {n:>5} x {path}")
    print(
        f"queues after the run: {checks['assignments']:,} new assignments, {checks['tasks_over_required']} tasks"
        f" over their required reviews, {checks['votes_twice_by_one_reviewer']} double votes; {checks['task_statuses']}"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
