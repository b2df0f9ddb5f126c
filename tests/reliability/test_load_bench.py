"""The load benchmark's own code at toy size, so it cannot rot between the (long, manual) bench runs:
bench/review_queue_data.py builds its data (1,000 instructions, the smallest size it takes), bench/load.py
writes the plan (sessions, tokens, rounds), and bench/load_mix.py's reviewers and API clients send their
whole request mix through Django's test Client, with CSRF checks on and every request marked as behind
the HTTPS proxy, as locust sends it to gunicorn. Locust itself is not needed (nor installed) here.

What must hold: every route group of the mix is exercised and answers as expected (no 4xx or 5xx), each
vote the mix was told was recorded is one new verdict, no task holds more votes than it needs, and the
results table has a row for every group.
"""

import random
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from apps.reviews.models import ReviewVerdict

BENCH = Path(__file__).resolve().parents[2] / "bench"
STEPS = 20  # steps per simulated user: enough, with these seeds, for every route group to come up

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the bench's data builder writes PostgreSQL SQL (generate_series, sha256, hashint8)",
)


class InProcess:
    """load_mix's client interface over a Django test Client of its own (one per simulated user)."""

    def __init__(self, samples: list):
        self.client = Client(enforce_csrf_checks=True)
        self.samples = samples

    def send(self, method, path, *, group, expect, data=None, headers=None):
        import load_mix

        send = self.client.get if method == "GET" else self.client.post
        start = time.perf_counter()
        response = send(path, data=data or {}, secure=True, headers=headers or {})
        ms = (time.perf_counter() - start) * 1000
        ok = response.status_code in expect
        self.samples.append((group, ms, ok, f"{method} {path} -> {response.status_code}"))
        cookies = {name: morsel.value for name, morsel in response.cookies.items()}
        return load_mix.Reply(response.status_code, response.content.decode(), cookies)


def _url() -> str:
    db = settings.DATABASES["default"]
    return psycopg.conninfo.make_conninfo(
        dbname=db["NAME"], host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"] or None,
        password=db["PASSWORD"] or None,
    )  # fmt: skip


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_bench_data_plan_and_request_mix_at_toy_size(shared_data, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import load
    import load_mix
    import review_queue_data
    import review_queue_load

    marker = review_queue_data.build(_url(), 1000, shared_data, log=lambda *a: None)
    assert marker["size"] == 1000
    plan = load.make_plan(
        "testserver", browsers=2, api_reviewers=1, api_readers=1, think_s={"browsers": [0, 0], "api": [0, 0]}
    )
    assert len({a["scope"]["round"] for a in plan["browsers"] + plan["api_reviewers"]}) == 3
    verdicts_before = ReviewVerdict.objects.count()
    samples: list = []
    users = [load_mix.Browser(InProcess(samples), plan, a, random.Random(i)) for i, a in enumerate(plan["browsers"])]
    users += [load_mix.ApiClient(InProcess(samples), plan, a, random.Random(10 + i))
              for i, a in enumerate(plan["api_reviewers"] + plan["api_readers"])]  # fmt: skip
    for _ in range(STEPS):
        for user in users:
            user.step()

    failed = [what for _, _, ok, what in samples if not ok]
    assert failed == []
    assert {group for group, *_ in samples} == set(load_mix.GROUPS)
    votes = sum(1 for group, *_ in samples if group in (load_mix.DECIDE, load_mix.DECIDE_HTMX, load_mix.API_VOTE))
    assert ReviewVerdict.objects.count() - verdicts_before == votes
    checks = review_queue_load.double_claims(marker["max_verdict"]["assignment"], marker["max_verdict"]["verdict"], {})
    assert (checks["tasks_over_required"], checks["votes_twice_by_one_reviewer"]) == (0, 0)
    rows = load_mix.summarise([(g, ms, ok) for g, ms, ok, _ in samples])
    text = load.table(rows, seconds=1.0)
    assert all(f"| {group} |" in text for group in (*load_mix.GROUPS, "all requests"))
    assert rows[-1]["n"] == len(samples) and rows[-1]["failed"] == 0


def test_the_load_client_never_reaches_retort():
    """The locust side (locustfile, load_mix) imports nothing of Retort or Django: it runs from its own
    venv, and gevent must never load where Retort's code does."""
    for name in ("locustfile.py", "load_mix.py"):
        source = (BENCH / name).read_text()
        imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
        assert not [line for line in imports if any(k in line for k in ("django", "apps", "config", "rest_framework"))]
    assert "gevent" not in sys.modules and "locust" not in sys.modules
