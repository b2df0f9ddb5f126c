"""The load benchmark's request mix: what reviewers and API clients send, written against a tiny client
interface so that locust (bench/locustfile.py) and the smoke test (tests/reliability/test_load_bench.py,
Django's test Client) run the very same requests. Standard library only: the locust process imports
this and nothing of Retort.

A client is any object with

    send(method, path, *, group, expect, data=None, headers=None) -> Reply

which sends one request (no redirects followed), counts it under `group` and marks it failed when its
status is not in `expect`. The plan (a JSON file bench/load.py writes) names the accounts, their
session cookies and tokens, and the ids the requests pick from.

Every request carries X-Forwarded-Proto: https, as the HTTPS proxy in front of gunicorn would in
production (config/settings.py trusts that header), so secure cookies, HSTS and the CSRF origin check
all run as they do there. Cookies are kept per user here, not in the client, because the secure
cookies would otherwise never travel over the plain-HTTP socket to 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import random
import re
from dataclasses import dataclass, field
from urllib.parse import urlencode

TASK_ID = re.compile(r'data-task="(\d+)"')
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
KIND = "verdict"
PROXY = {"X-Forwarded-Proto": "https"}

# Route groups, the rows of the results table (in this order).
CLAIM = "review: claim (focus view GET)"
DECIDE = "review: verdict POST"
DECIDE_HTMX = "review: verdict POST, HTMX (vote + next claim)"
TABLE = "review: table page (cursor or filter)"
OVERVIEW = "review: overview"
API_LIST = "api: instructions list (cursor walk)"
API_FILTER = "api: instructions by category"
API_SEARCH = "api: instructions search"
API_DETAIL = "api: instruction detail"
API_EXPERIMENTS = "api: experiments, rounds"
API_JUDGMENTS = "api: judgments filtered"
API_TASKS = "api: review tasks list"
API_CLAIM = "api: review claim"
API_VOTE = "api: review vote"
GROUPS = (CLAIM, DECIDE, DECIDE_HTMX, TABLE, OVERVIEW, API_LIST, API_FILTER, API_SEARCH, API_DETAIL,
          API_EXPERIMENTS, API_JUDGMENTS, API_TASKS, API_CLAIM, API_VOTE)  # fmt: skip


@dataclass
class Reply:
    status: int
    text: str
    cookies: dict[str, str] = field(default_factory=dict)  # the cookies this response set


def cursor_after(pk: int) -> str:
    """DRF's cursor for "the rows after id pk" (its encode_cursor: base64 of the query string p=<pk>)."""
    return base64.b64encode(urlencode({"p": pk}).encode("ascii")).decode("ascii")


def _json(reply: Reply) -> dict:
    """The body of a successful JSON answer, else {} (a failure is already counted by the client)."""
    if reply.status not in (200, 201):
        return {}
    try:
        body = json.loads(reply.text)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class Browser:
    """A reviewer in a browser: his session cookie, the CSRF cookie once the server sets it, the task he
    holds and the form token of the page that showed it."""

    def __init__(self, client, plan: dict, account: dict, rng: random.Random):
        self.client, self.plan, self.rng = client, plan, rng
        self.origin = f"https://{plan['host']}"
        self.cookies = {plan["session_cookie"]: account["session"]}
        self.scope = account["scope"]  # {"experiment": id, "round": id}: the round he reviews
        self.task: int | None = None
        self.token = ""

    def _send(self, method, path, group, expect, data=None, htmx=False) -> Reply:
        headers = {**PROXY, "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if method == "POST":
            headers["Origin"] = self.origin  # what a browser sends with a form; Django's CSRF check reads it
        if htmx:
            headers["HX-Request"] = "true"
        reply = self.client.send(method, path, group=group, expect=expect, data=data, headers=headers)
        self.cookies.update(reply.cookies)
        return reply

    def _holds(self, reply: Reply) -> None:
        """Remember the task and the form token the page shows (none when the request failed)."""
        task, token = TASK_ID.search(reply.text), CSRF_FIELD.search(reply.text)
        self.task = int(task.group(1)) if task and reply.status == 200 else None
        self.token = token.group(1) if token else self.token

    def claim(self) -> None:
        self._holds(self._send("GET", f"/review/{KIND}/?{urlencode(self.scope)}", CLAIM, (200,)))

    def decide(self) -> None:
        """Vote on the held task (one in four the HTMX way, which answers with the next claim)."""
        if self.task is None:
            self.claim()
        if self.task is None:
            return
        data = {"csrfmiddlewaretoken": self.token, "decision": "flip" if self.rng.random() < 0.1 else "accept",
                "note": "", **self.scope}  # fmt: skip
        path = f"/review/{KIND}/{self.task}/decide/"
        if self.rng.random() < 0.25:
            self._holds(self._send("POST", path, DECIDE_HTMX, (200,), data, htmx=True))
            return
        self._send("POST", path, DECIDE, (302,), data)
        self.claim()  # where the redirect goes

    def table(self) -> None:
        n, rng = self.plan["size"], self.rng
        if rng.random() < 0.5:  # a page deep in the queue, by its keyset cursor (priority.id)
            query = {"after": f"{rng.choice((0, 2))}.{rng.randrange(1, n + 1)}"}
        else:
            query = {**self.scope, "status": "open", "category": rng.choice(self.plan["categories"])}
        self._send("GET", f"/review/{KIND}/table/?{urlencode(query)}", TABLE, (200,))

    def overview(self) -> None:
        self._send("GET", "/review/", OVERVIEW, (200,))

    def step(self) -> None:
        """One action, weighted like a working reviewer: mostly voting, sometimes the table."""
        action = self.rng.choices((self.decide, self.table, self.overview), (8, 3, 1))[0]
        action()


class ApiClient:
    """A script with a token: reads instructions, experiments, judgments and the review tasks; with a
    reviewer's token it also claims and votes through the API."""

    def __init__(self, client, plan: dict, account: dict, rng: random.Random):
        self.client, self.plan, self.rng = client, plan, rng
        self.headers = {**PROXY, "Authorization": f"Token {account['token']}"}
        self.scope = account.get("scope")

    def _get(self, path, group, query=None) -> Reply:
        url = f"/api/v1/{path}" + (f"?{urlencode(query)}" if query else "")
        return self.client.send("GET", url, group=group, expect=(200,), headers=self.headers)

    def walk(self) -> None:
        """Two to four pages of a dataset's instructions, following `next` from a cursor anywhere."""
        plan, rng = self.plan, self.rng
        lo, hi = plan["instruction_ids"]
        query = {"dataset": plan["dataset"], "page_size": 100, "cursor": cursor_after(rng.randint(lo - 1, hi))}
        reply = self._get("instructions/", API_LIST, query)
        for _ in range(rng.randint(1, 3)):
            nxt = _json(reply).get("next")
            if not nxt:
                return
            path = nxt.split("/api/v1/", 1)[1]
            reply = self.client.send("GET", f"/api/v1/{path}", group=API_LIST, expect=(200,), headers=self.headers)

    def read(self) -> None:
        plan, rng = self.plan, self.rng
        which = rng.choices(range(6), (2, 2, 3, 2, 2, 1))[0]
        if which == 0:
            self.walk()
        elif which == 1:
            self._get(
                "instructions/", API_FILTER, {"dataset": plan["dataset"], "category": rng.choice(plan["categories"])}
            )
        elif which == 2:
            self._get(f"instructions/{rng.randint(*plan['instruction_ids'])}/", API_DETAIL)
        elif which == 3:
            self._get("instructions/", API_SEARCH, {"search": rng.choice(plan["search_words"]), "page_size": 20})
        elif which == 4:
            experiment = rng.choice(plan["experiments"])
            self._get("experiments/", API_EXPERIMENTS)
            self._get(f"experiments/{experiment}/", API_EXPERIMENTS)
            self._get("rounds/", API_EXPERIMENTS, {"experiment": experiment})
        else:
            query = {"experiment": rng.choice(plan["experiments"]), "verdict": "hard", "contested": "true"}
            self._get("judgments/", API_JUDGMENTS, query)
            self._get("reviews/tasks/", API_TASKS, {"kind": KIND, "status": "open"})

    def review(self) -> None:
        """Claim the next task of its round through the API and vote on it."""
        data = {"kind": KIND, **self.scope}
        reply = self.client.send("POST", "/api/v1/reviews/claim/", group=API_CLAIM, expect=(200,), data=data,
                                 headers=self.headers)  # fmt: skip
        task = _json(reply).get("id")
        if task:
            vote = {"decision": "flip" if self.rng.random() < 0.1 else "accept"}
            self.client.send("POST", f"/api/v1/reviews/tasks/{task}/verdicts/", group=API_VOTE,
                             expect=(201,), data=vote, headers=self.headers)  # fmt: skip

    def step(self) -> None:
        if self.scope and self.rng.random() < 0.7:
            self.review()
        else:
            self.read()


def summarise(samples: list[tuple[str, float, bool]]) -> list[dict]:
    """Rows like bench/load.py's table from (group, ms, ok) samples, for a run without locust: nearest-rank
    percentiles per group in GROUPS order, then "all requests"."""
    by: dict[str, list[tuple[float, bool]]] = {}
    for group, ms, ok in samples:
        by.setdefault(group, []).append((ms, ok))
        by.setdefault("all requests", []).append((ms, ok))

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[max(0, int(-(-len(ordered) * p // 100)) - 1)]

    rows = []
    for group in (*GROUPS, "all requests"):
        if group in by:
            ms = [m for m, _ in by[group]]
            rows.append({"group": group, "n": len(ms), "failed": sum(1 for _, ok in by[group] if not ok),
                         "p50": pct(ms, 50), "p95": pct(ms, 95), "p99": pct(ms, 99), "max": max(ms)})  # fmt: skip
    return rows
