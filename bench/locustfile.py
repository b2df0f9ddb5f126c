"""Locust users for the load benchmark (run by bench/load.py from .venv-load; never imported by Retort or
its tests, since importing locust loads gevent). The requests themselves are in bench/load_mix.py.

    LOAD_PLAN=bench/out/load_plan.json .venv-load/bin/locust -f bench/locustfile.py --headless ...

Each kind of user has a fixed count, so --users must be their sum (bench/load.py passes it); each
takes the next account of its kind from the plan, so no two users share a reviewer's claim.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
from pathlib import Path

from locust import HttpUser, between, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load_mix

PLAN = json.loads(Path(os.environ["LOAD_PLAN"]).read_text())
_accounts = {kind: itertools.cycle(PLAN[kind]) for kind in ("browsers", "api_reviewers", "api_readers")}
_seeds = itertools.count(PLAN.get("seed", 1))


class LocustClient:
    """load_mix's client interface over locust's HTTP session: one request, its name the route group, a
    failure when the status is not the expected one (every 5xx is one)."""

    def __init__(self, session):
        self.session = session

    def send(self, method, path, *, group, expect, data=None, headers=None) -> load_mix.Reply:
        with self.session.request(
            method, path, name=group, data=data, headers=headers, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code not in expect:
                response.failure(f"{response.status_code} (expected {'/'.join(map(str, expect))})")
            cookies = {c.name: c.value for c in response.cookies}
            return load_mix.Reply(response.status_code, response.text or "", cookies)


class _MixUser(HttpUser):
    """One account of the plan's `account_kind`, working load_mix's `mix` step after step."""

    abstract = True
    account_kind = ""
    mix = None

    def on_start(self):
        account = next(_accounts[self.account_kind])
        self.actor = self.mix(LocustClient(self.client), PLAN, account, random.Random(next(_seeds)))

    @task
    def step(self):
        self.actor.step()


class Reviewer(_MixUser):
    """A reviewer in the browser: focus view, votes (form and HTMX), now and then the table."""

    fixed_count = PLAN["counts"]["browsers"]
    wait_time = between(*PLAN["think_s"]["browsers"])
    account_kind, mix = "browsers", load_mix.Browser


class ApiReviewer(_MixUser):
    """A script with a reviewer's token: claims and votes through the API, reads now and then."""

    fixed_count = PLAN["counts"]["api_reviewers"]
    wait_time = between(*PLAN["think_s"]["api"])
    account_kind, mix = "api_reviewers", load_mix.ApiClient


class ApiReader(_MixUser):
    """A script with a viewer's token: lists, filters and searches instructions, reads experiments."""

    fixed_count = PLAN["counts"]["api_readers"]
    wait_time = between(*PLAN["think_s"]["api"])
    account_kind, mix = "api_readers", load_mix.ApiClient
