"""Review queues at a million instructions: server time of the queue pages, search, claim-next and a
verdict POST; 20 concurrent reviewers; an OFFSET baseline. PostgreSQL only.

    python bench/review_queue.py [--size 1000000] [--rebuild] [--samples 100] [--figure-seconds 12]
                                 [--reviewers 20] [--seconds 30] [--json bench/out/review_queue.json]

The data (bench/review_queue_data.py) is built once in the database `retort_reviewbench` (DATABASE_URL's
server, else the local one) and reused while its marker says the same size; --rebuild forces a new one,
another --size rebuilds it at that size. Each run first undoes what earlier runs did to the queues. The
measurements are in bench/review_queue_load.py; the figures and what they showed are in
docs/benchmarks.md. About 6 minutes at the full size with the build, under 2 minutes reusing the data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from _setup import OUT, REPO, SHARED, machine

DB_NAME = "retort_reviewbench"


def _server() -> str:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    return base.rpartition("/")[0]


def _marker_in(url: str) -> dict | None:
    import psycopg
    from review_queue_data import DATASET, MARKER_VERSION

    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT description FROM datasets_dataset WHERE name = %s", (DATASET,)).fetchone()
    except psycopg.Error:
        return None
    try:
        marker = json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None
    return marker if marker and marker.get("version") == MARKER_VERSION else None


def prepare_database(size: int, rebuild: bool, log=print, name: str = DB_NAME) -> tuple[str, dict, bool]:
    """(url, marker, built): the bench database `name` at `size`, reused when its marker matches."""
    import psycopg

    server = _server()
    url = f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        marker = _marker_in(url) if exists and not rebuild else None
        fresh = marker is None or marker.get("size") != size
        if fresh:
            if exists:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ.update(
        DATABASE_URL=url,
        CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/5"),
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret-key-bench-only-secret-key-0123456789"),
        ALLOWED_HOSTS="localhost,127.0.0.1,testserver",
        RETORT_VAR_DIR=os.environ.get("RETORT_VAR_DIR", str(OUT / "var-reviewbench")),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    sys.path.insert(0, str(REPO))
    import django
    from django.core.management import call_command

    django.setup()
    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrate_s = time.perf_counter() - t
    if not fresh:
        from review_queue_data import reset_reviews

        log(f"data: reusing {size:,} instructions (built in {marker['load_s']} s); migrate {migrate_s:.1f} s")
        log(f"  reset {reset_reviews(url, marker):,} tasks that earlier runs had decided or claimed")
        return url, marker, False
    from review_queue_data import build

    log(f"data: building {size:,} instructions, {2 * size:,} judgments, {size:,} review tasks")
    marker = build(url, size, SHARED, log=log)
    log(f"  loaded in {marker['load_s']} s (migrate {migrate_s:.1f} s before it)")
    return url, marker, True


SEARCH_WORDS = ("photosynthesis", "climate change", "recipe", "sentence")


def measure(args, marker: dict, log=print) -> dict:
    import random

    import review_queue_load as rq
    from django.conf import settings
    from django.urls import reverse
    from review_queue_data import OPERATOR, REVIEWERS

    from apps.console.review_queries import queue_filter
    from apps.experiments.models import Round

    # Static files by their plain names: production mode names them from collectstatic's manifest, which
    # this checkout has not built; the cost of the tag is the same.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    rng = random.Random(7)
    n = args.samples
    rounds = {(r.experiment.name[-1], r.index): r for r in Round.objects.select_related("experiment")}
    a2, b1, b2 = rounds[("a", 2)], rounds[("b", 1)], rounds[("b", 2)]
    table = reverse("reviews:table", args=["verdict"])
    queue = reverse("reviews:queue", args=["verdict"])
    decide_base = queue  # /review/verdict/<pk>/decide/
    reader = rq.client_for(OPERATOR)
    figures: list[rq.Figure] = []

    def scoped(r, **extra):
        from urllib.parse import urlencode

        return urlencode({"experiment": r.experiment_id, "round": r.pk, **extra})

    log("table view")
    figures.append(rq.page_series(reader, "table view, all rounds, first page", [table] * n, 100))
    figures.append(rq.page_series(reader, "table view, a round's first page", [f"{table}?{scoped(a2)}"] * n, 100))
    size = args.size
    cursors = [f"{table}?after={rng.choice((0, 2))}.{rng.randrange(1, size)}" for _ in range(n)]
    figures.append(rq.page_series(reader, "table view, all rounds, a page at a random keyset cursor", cursors, 100))
    filters = [
        scoped(b1, status="open", category=rng.choice(("Math", "Writing", "Biology")), contested="yes", gap_min=-1,
               gap_max=1)
        for _ in range(n)
    ]  # fmt: skip
    figures.append(rq.page_series(reader, "table view, a round filtered (status, category, contested, gap)",
                                  [f"{table}?{f}" for f in filters], 100))  # fmt: skip
    from apps.console.review_focus import Scope, scope_counts

    figures.append(rq.call_series("  of which the queue's counts, all rounds (scope_counts)",
                                  lambda i: scope_counts("verdict", Scope()), n))  # fmt: skip
    figures.append(rq.call_series("  of which the queue's counts, a round (scope_counts)",
                                  lambda i: scope_counts("verdict", Scope(a2.experiment_id, a2.pk)), n))  # fmt: skip
    log("search")
    from apps.datasets.models import Instruction
    from apps.datasets.selectors import instruction_search

    matches = {w: instruction_search(Instruction.objects.all(), w).count() for w in SEARCH_WORDS}
    words = [SEARCH_WORDS[i % len(SEARCH_WORDS)] for i in range(n)]
    note = "; ".join(f"{w!r}: {m:,} instructions" for w, m in matches.items())
    searches = [
        rq.page_series(reader, "text search, all rounds", [f"{table}?q={w}" for w in words], 100, note=note),
        rq.page_series(reader, "text search in a round", [f"{table}?{scoped(b2, q=w)}" for w in words], 100),
        rq.call_series("  search with its matches first (proposed shape, selector level)",
                       lambda i: rq.matches_first_search_page(words[i]), n),
    ]  # fmt: skip
    for figure in searches:
        figure.note = (
            (figure.note + "; " if figure.note else "")
            + "p50 by word: "
            + ", ".join(f"{w} {ms:.0f} ms" for w, ms in rq.by_word(figure, words).items())
        )
    figures += searches
    log("claim-next and verdict POST")
    reviewer = rq.client_for(REVIEWERS[0])
    scope = {"experiment": a2.experiment_id, "round": a2.pk}
    claims, posts, htmx_posts = rq.work_queue(
        reviewer, f"{queue}?{scoped(a2)}", lambda pk: f"{decide_base}{pk}/decide/", scope, n, rng, htmx_every=4
    )
    figures.append(rq.Figure("claim-next (focus view, claims the next task)", claims, 100))
    figures.append(rq.Figure("verdict POST (vote, redirect)", posts, 50))
    figures.append(rq.Figure("verdict POST with HTMX (vote, next claim, its panel)", htmx_posts))
    figures.append(rq.service_claims(REVIEWERS[1], "verdict", [b2.pk], n))
    log("OFFSET baseline")
    depth = max(1, size // 2)
    keyset, offset, _ = rq.offset_vs_keyset(queue_filter(kind="verdict"), depth, max(5, n // 10))
    figures += [keyset, offset]
    log(f"{args.reviewers} concurrent reviewers for {args.seconds:.0f} s")
    from review_queue_data import reviews_max_ids

    before = reviews_max_ids(os.environ["DATABASE_URL"])
    half = args.reviewers // 2
    team = REVIEWERS[: args.reviewers]
    groups = [
        (team[:half], f"{queue}?{scoped(a2)}", decide_base, {"experiment": a2.experiment_id, "round": a2.pk}),
        (team[half:], f"{queue}?{scoped(b1)}", decide_base, {"experiment": b1.experiment_id, "round": b1.pk}),
    ]
    load = rq.concurrent_reviewers(groups, args.seconds)
    checks = rq.double_claims(before["assignment"], before["verdict"], load.pop("claimed"))
    return {"figures": [f.row() for f in figures], "concurrent": load, "checks": checks,
            "ratio_offset_keyset": rq.pct(offset.samples, 50) / rq.pct(keyset.samples, 50), "depth": depth}  # fmt: skip


def report(result: dict, marker: dict, built: bool, total_s: float) -> None:
    size = marker["size"]
    where = os.environ["DATABASE_URL"].rsplit("@", 1)[-1]
    print(f"\nmachine: {machine()}; {time.strftime('%Y-%m-%d')}; PostgreSQL at {where}")
    print(
        f"data: {size:,} instructions, {2 * size:,} judgments, {4 * size:,} answers, {size:,} verdict tasks;"
        f" load {marker['load_s']} s ({'this run' if built else 'reused'}: {marker['timings']})"
    )
    print(f"{'measure (ms; pages in-process through the test Client)':<72} {'n':>4} {'p50':>7} {'p95':>7} {'p99':>7}")
    for f in result["figures"]:
        met = "" if f["met"] is None else f"  target {f['target_ms']:.0f}: {'met' if f['met'] else 'MISSED'}"
        print(f"{f['name']:<72} {f['n']:>4} {f['p50']:>7.1f} {f['p95']:>7.1f} {f['p99']:>7.1f}{met}")
        if f["note"]:
            print(f"    ({f['note']})")
    print(f"OFFSET / keyset at task {result['depth']:,}: {result['ratio_offset_keyset']:.1f}x (p50)")
    load = result["concurrent"]
    claim, decide = load["claim"], load["decide"]
    print(
        f"{load['reviewers']} concurrent reviewers, {load['seconds']:.0f} s: {load['decisions']:,} decisions"
        f" ({load['throughput']:.1f}/s); claim p50 {claim['p50']:.0f} p95 {claim['p95']:.0f} ms;"
        f" verdict POST p50 {decide['p50']:.0f} p95 {decide['p95']:.0f} ms; errors: {len(load['errors'])}"
    )
    c = result["checks"]
    print(
        f"double claims: {c['tasks_over_required']} tasks with more live slots than required,"
        f" {c['votes_twice_by_one_reviewer']} reviewers voting twice on a task,"
        f" {c['handed_to_too_many']} tasks handed to more reviewers than allowed"
    )
    print(f"  ({c['tasks_handed']:,} tasks handed out, {c['assignments']:,} assignments, {c['task_statuses']})")
    print(f"total run time {total_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="instructions (a multiple of 4)")
    parser.add_argument("--rebuild", action="store_true", help="build the data again even if it is there")
    parser.add_argument("--samples", type=int, default=100, help="requests per timed figure")
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the concurrent reviewers work")
    parser.add_argument("--figure-seconds", type=float, default=12.0, help="time limit of each figure's samples")
    parser.add_argument("--json", default=str(OUT / "review_queue.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    import review_queue_load

    review_queue_load.BUDGET_S = args.figure_seconds
    _, marker, built = prepare_database(args.size, args.rebuild)
    result = measure(args, marker)
    total_s = time.perf_counter() - started
    report(result, marker, built, total_s)
    OUT.mkdir(parents=True, exist_ok=True)
    result.update(marker=marker, built=built, total_s=round(total_s, 1), machine=machine(), args=vars(args),
                  date=time.strftime("%Y-%m-%d %H:%M"), load_average=os.getloadavg())  # fmt: skip
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1, default=str)
    c = result["checks"]
    if c["tasks_over_required"] or c["votes_twice_by_one_reviewer"] or c["handed_to_too_many"]:
        raise SystemExit("double claims found")


if __name__ == "__main__":
    main()
