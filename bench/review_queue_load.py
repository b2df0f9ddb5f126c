"""The review-queue benchmark's measurements: pages timed in-process through Django's test Client against
the bench database (the whole request: middleware, session, view, queries, template; no WSGI server or
socket), the claim query through the service, OFFSET against keyset, and concurrent reviewers in
processes of their own, checked afterwards for double claims from the ReviewAssignment rows."""

from __future__ import annotations

import math
import multiprocessing as mp
import random
import re
import time
from dataclasses import dataclass, field

TASK_ID = re.compile(r'data-task="(\d+)"')
WARMUP = 3
MIN_SAMPLES = 10
# Seconds one figure may take: sampling stops at the sample count or here, whichever comes first (after
# MIN_SAMPLES), so a slow page cannot stretch the run. Set from --figure-seconds.
BUDGET_S = 20.0


class Clock:
    """Counts samples against the figure's budget."""

    def __init__(self, n: int):
        self.n, self.start = n, time.perf_counter()

    def more(self, taken: int) -> bool:
        if taken >= self.n:
            return False
        return taken < MIN_SAMPLES or time.perf_counter() - self.start < BUDGET_S


def pct(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of samples in ms."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Figure:
    name: str
    samples: list[float] = field(default_factory=list)
    target_ms: float | None = None
    note: str = ""

    def row(self) -> dict:
        s = self.samples
        out = {"name": self.name, "n": len(s), "p50": pct(s, 50), "p95": pct(s, 95), "p99": pct(s, 99),
               "max": max(s) if s else float("nan"), "target_ms": self.target_ms, "note": self.note}  # fmt: skip
        out["met"] = None if self.target_ms is None else out["p95"] <= self.target_ms
        return out


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def client_for(username: str):
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client


def get(client, url: str, *, htmx: bool = False, expect=(200,)):
    headers = {"HX-Request": "true"} if htmx else {}
    start = time.perf_counter()
    response = client.get(url, secure=True, headers=headers)
    elapsed = _ms(start)
    if response.status_code not in expect:
        raise SystemExit(f"GET {url} answered {response.status_code}: {response.content[:500]!r}")
    return elapsed, response


def post(client, url: str, data: dict, *, htmx: bool = False, expect=(302,)):
    headers = {"HX-Request": "true"} if htmx else {}
    start = time.perf_counter()
    response = client.post(url, data, secure=True, headers=headers)
    elapsed = _ms(start)
    if response.status_code not in expect:
        raise SystemExit(f"POST {url} answered {response.status_code}: {response.content[:500]!r}")
    return elapsed, response


def page_series(client, name: str, urls: list[str], target_ms=None, note: str = "") -> Figure:
    """GET each URL once (after a few warm-up requests on the first ones), timing each."""
    for url in urls[:WARMUP]:
        get(client, url)
    figure = Figure(name, target_ms=target_ms, note=note)
    clock = Clock(len(urls))
    while clock.more(len(figure.samples)):
        figure.samples.append(get(client, urls[len(figure.samples)])[0])
    return figure


def claimed_id(response) -> int | None:
    match = TASK_ID.search(response.content.decode())
    return int(match.group(1)) if match else None


def work_queue(client, queue_url: str, decide_url, scope: dict, n: int, rng: random.Random, *, htmx_every=0):
    """A reviewer working a queue: the focus view (claims the next task), then his verdict POST, up to n
    times; every `htmx_every`-th vote goes the HTMX way instead (the vote, the next claim and its panel in
    one request). Returns the samples of the claims, the POSTs and the HTMX POSTs."""
    claims, posts, htmx_posts = [], [], []
    _, response = get(client, queue_url)
    clock, i = Clock(n), 0
    while clock.more(len(claims)):
        task_id = claimed_id(response)
        if task_id is None:
            raise SystemExit(f"{queue_url} offered no task to claim")
        data = {"decision": "flip" if rng.random() < 0.1 else "accept", "note": "", **scope}
        warm = i >= WARMUP
        i += 1
        if htmx_every and i % htmx_every == 0:
            took, response = post(client, decide_url(task_id), data, htmx=True, expect=(200,))
            if warm:
                htmx_posts.append(took)
            continue
        took, _ = post(client, decide_url(task_id), data)
        elapsed, response = get(client, queue_url)
        if warm:
            posts.append(took)
            claims.append(elapsed)
    return claims, posts, htmx_posts


def service_claims(username: str, kind: str, round_ids: list[int], n: int) -> Figure:
    """review_claim_next itself; each claimed task is then voted on through the service (not timed), so
    that the next claim runs the whole query instead of returning the task already held."""
    from django.contrib.auth import get_user_model

    from apps.reviews.claiming import review_claim_next
    from apps.reviews.services import review_decide

    user = get_user_model().objects.get(username=username)
    figure = Figure("claim-next, the service alone (review_claim_next)")
    clock, i = Clock(n), -WARMUP
    while clock.more(len(figure.samples)):
        i += 1
        start = time.perf_counter()
        task = review_claim_next(reviewer=user, kind=kind, round_ids=round_ids)
        took = _ms(start)
        if task is None:
            raise SystemExit("review_claim_next found nothing to claim")
        review_decide(reviewer=user, task_id=task.pk, decision="accept")
        if i > 0:
            figure.samples.append(took)
    return figure


def offset_vs_keyset(qs, depth: int, n: int) -> tuple[Figure, Figure, int]:
    """The same table page (50 tasks at `depth` in queue order, with their subjects loaded as the page
    does) read by keyset (after the cursor of the task before it) and by OFFSET."""
    from apps.console.review_queries import PAGE_SIZE, task_page
    from apps.console.review_selectors import review_items

    ordered = qs.order_by("-priority", "pk")
    cursor = ordered.values_list("priority", "pk")[depth - 1]
    keyset, offset = Figure(f"table page at task {depth:,}: keyset"), Figure(f"table page at task {depth:,}: OFFSET")
    same = None
    for i in range(n + 1):
        start = time.perf_counter()
        page = task_page(qs, after=cursor)
        review_items(page.rows)
        took_k = _ms(start)
        start = time.perf_counter()
        rows = list(ordered.select_related("subject_type")[depth : depth + PAGE_SIZE])
        review_items(rows)
        took_o = _ms(start)
        same = [t.pk for t in page.rows] == [t.pk for t in rows]
        if not same:
            raise SystemExit(f"keyset and OFFSET pages differ at depth {depth}")
        if i:  # the first pair warms the cache for both
            keyset.samples.append(took_k)
            offset.samples.append(took_o)
    return keyset, offset, depth


# --- concurrent reviewers ---------------------------------------------------------------------------------
def _reviewer_process(username, queue_url, decide_base, scope, seconds, start_at, seed, out):
    from django.db import connections

    connections.close_all()  # this process's own connection, opened on first use
    rng = random.Random(seed)
    client = client_for(username)
    claims, decides, claimed, errors = [], [], [], []
    while time.time() < start_at:
        time.sleep(0.005)
    stop = time.time() + seconds
    took, response = get(client, queue_url)
    claims.append(took)
    while time.time() < stop:
        task_id = claimed_id(response)
        if task_id is None:
            errors.append("queue empty")
            break
        claimed.append(task_id)
        data = {"decision": "flip" if rng.random() < 0.1 else "accept", "note": "", **scope}
        took, response = post(client, f"{decide_base}{task_id}/decide/", data, expect=(302, 200))
        if response.status_code != 302:
            errors.append(f"task {task_id}: vote refused")
        decides.append(took)
        took, response = get(client, queue_url)
        claims.append(took)
    connections.close_all()
    out.put({"user": username, "claims": claims, "decides": decides, "claimed": claimed, "errors": errors,
             "ended": time.time()})  # fmt: skip


def concurrent_reviewers(groups: list[tuple[list[str], str, str, dict]], seconds: float) -> dict:
    """Reviewers in processes of their own (each with its own database connection), all starting at
    once and working their queue for `seconds`: focus view (claim), verdict POST, focus view, ..."""
    from django.db import connections

    connections.close_all()
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 2.0
    procs = []
    for users, queue_url, decide_base, scope in groups:
        for i, user in enumerate(users):
            args = (user, queue_url, decide_base, scope, seconds, start_at, 1000 + i, out)
            procs.append(ctx.Process(target=_reviewer_process, args=args))
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    wall = max(r["ended"] for r in results) - start_at  # the last request may end after `seconds`
    claims = [x for r in results for x in r["claims"]]
    decides = [x for r in results for x in r["decides"]]
    return {
        "reviewers": len(procs),
        "seconds": wall,
        "decisions": len(decides),
        "throughput": len(decides) / wall,
        "claim": Figure(f"{len(procs)} reviewers: claim (focus view)", claims).row(),
        "decide": Figure(f"{len(procs)} reviewers: verdict POST", decides).row(),
        "errors": [e for r in results for e in r["errors"]],
        "claimed": {r["user"]: r["claimed"] for r in results},
    }


def double_claims(since_assignment: int, since_verdict: int, claimed: dict[str, list[int]]) -> dict:
    """What the ReviewAssignment and ReviewVerdict rows say after the concurrent run: tasks holding more
    live slots than required_reviews, reviewers with two votes on a task, and tasks the processes were
    handed by more reviewers than the task allows."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            # Every live slot of the tasks the run touched, whenever it was taken.
            """SELECT count(*) FROM (
                 SELECT a.task_id FROM reviews_reviewassignment a JOIN reviews_reviewtask t ON t.id = a.task_id
                 WHERE a.task_id IN (SELECT task_id FROM reviews_reviewassignment WHERE id > %s)
                   AND (a.status = 'submitted' OR (a.status = 'active' AND a.lease_expires_at > now()))
                 GROUP BY a.task_id, t.required_reviews HAVING count(*) > t.required_reviews) x""",
            [since_assignment],
        )
        over = cur.fetchone()[0]
        cur.execute(
            # Every verdict on the tasks the run voted on: the bench never changes its mind, so two
            # verdicts by one reviewer on one task would be a task decided twice.
            """SELECT count(*) FROM (SELECT task_id, reviewer_id FROM reviews_reviewverdict
                 WHERE task_id IN (SELECT task_id FROM reviews_reviewverdict WHERE id > %s)
                 GROUP BY task_id, reviewer_id HAVING count(*) > 1) x""",
            [since_verdict],
        )
        twice = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM reviews_reviewassignment WHERE id > %s", [since_assignment])
        assignments = cur.fetchone()[0]
        cur.execute(
            "SELECT status, count(*) FROM reviews_reviewtask WHERE id IN (SELECT task_id FROM reviews_reviewassignment"
            " WHERE id > %s) GROUP BY status",
            [since_assignment],
        )
        statuses = dict(cur.fetchall())
    handed: dict[int, set[str]] = {}
    for user, ids in claimed.items():
        for task_id in ids:
            handed.setdefault(task_id, set()).add(user)
    from apps.reviews.models import ReviewTask

    required = dict(ReviewTask.objects.filter(pk__in=list(handed)).values_list("pk", "required_reviews"))
    handed_over = sum(1 for pk, users in handed.items() if len(users) > required.get(pk, 1))
    return {"tasks_over_required": over, "votes_twice_by_one_reviewer": twice, "handed_to_too_many": handed_over,
            "assignments": assignments, "task_statuses": statuses, "tasks_handed": len(handed)}  # fmt: skip


def call_series(name: str, fn, n: int, target_ms=None, note: str = "") -> Figure:
    """Time a selector-level callable (no request around it) like page_series times a page."""
    for _ in range(WARMUP):
        fn(0)
    figure = Figure(name, target_ms=target_ms, note=note)
    clock = Clock(n)
    while clock.more(len(figure.samples)):
        start = time.perf_counter()
        fn(len(figure.samples))
        figure.samples.append(_ms(start))
    return figure


def matches_first_search_page(word: str):
    """The proposed shape of the table's search: the judgments whose instruction the full-text index
    finds, materialised first (a MATERIALIZED CTE), then their tasks by subject id in queue order. The
    page's own `subject_id IN (subquery)` lets PostgreSQL walk the queue's order index instead, testing
    each task's instruction against the words one by one, which for a word in 0.2-0.5% of the rows is
    slower by one to two orders of magnitude."""
    from django.db.models.expressions import RawSQL

    from apps.console.review_queries import queue_filter, task_page
    from apps.console.review_selectors import review_items
    from apps.datasets.models import Instruction
    from apps.datasets.selectors import instruction_search
    from apps.judging.models import Judgment

    found = instruction_search(Instruction.objects.all(), word).values("pk")
    sql, params = Judgment.objects.filter(instruction__in=found).values("pk").query.sql_with_params()
    # Django's own SQL with its parameters kept apart, wrapped in a CTE.
    matches = RawSQL(f"WITH m AS MATERIALIZED ({sql}) SELECT * FROM m", params)  # noqa: S608, S611
    page = task_page(queue_filter(kind="verdict").filter(subject_id__in=matches))
    return review_items(page.rows)


def by_word(figure: Figure, words: list[str]) -> dict[str, float]:
    """p50 of a search figure's samples per word (sample i searched words[i])."""
    out: dict[str, list[float]] = {}
    for i, ms in enumerate(figure.samples):
        out.setdefault(words[i], []).append(ms)
    return {w: pct(v, 50) for w, v in out.items()}
