"""Twenty reviewers working one queue at the same moment, on PostgreSQL, through the pages and the API:
half of them are browsers (a logged-in test Client each: the focus view claims, the decision form posts),
half are API clients (claim, then a verdict). Each loops until the queue has nothing left for it.

What must hold, with overlap 1 and 3: no task is ever held by more than `overlap` reviewers, nobody is
given a task twice, every decision a reviewer was told was recorded is in the database exactly once (and
nothing else is), every task ends with `overlap` votes by different reviewers, and its resolution is the
one its votes call for (agreeing votes: done with their decision and text; disagreeing: a conflict).

RETORT_RACE_RUNS repeats each case on a fresh queue (`make test` runs each once; the figures in
docs/reliability.md come from 5 runs).
"""

import os
import re

import pytest
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.reviews.models import ReviewAssignment, ReviewTask, ReviewVerdict
from tests.apps.reviews.conftest import make_round, reviewer
from tests.apps.reviews.test_claiming import _in_threads
from tests.factories import ReviewTaskFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="claiming races need PostgreSQL's row locks (skip_locked); SQLite serialises every writer",
    ),
]

REVIEWERS = 20
TASKS = 24
RUNS = int(os.environ.get("RETORT_RACE_RUNS", "1"))
_DECIDE = re.compile(r'action="/review/generated/(\d+)/decide/')


def _decision(task_id: int, who: int) -> tuple[str, str]:
    """What reviewer `who` decides on a task: most tasks get the same decision from everyone (accept,
    reject or an edit); every fourth one splits reviewers by parity, so with overlap 3 it may conflict."""
    match task_id % 4:
        case 0:
            return "accept", ""
        case 1:
            return "reject", ""
        case 2:
            return "edit", f"Rewritten task {task_id}."
    return ("accept", "") if who % 2 == 0 else ("reject", "")


class Browser:
    """A reviewer in a browser: the focus view claims the next task, the decision form posts to it."""

    def __init__(self, user, round_id: int):
        self.client, self.round_id = Client(), round_id
        self.client.force_login(user)

    def claim(self) -> int | None:
        page = self.client.get("/review/generated/", {"round": self.round_id})
        assert page.status_code == 200, page.status_code
        found = _DECIDE.search(page.content.decode())
        return int(found.group(1)) if found else None

    def decide(self, task_id: int, decision: str, text: str) -> bool:
        response = self.client.post(
            f"/review/generated/{task_id}/decide/",
            {"decision": decision, "edited_text": text, "note": "", "round": self.round_id},
        )
        # A vote goes on to the queue; a refusal comes back to the task with its reason.
        assert response.status_code == 302, response.status_code
        return response["Location"].startswith("/review/generated/?")


class ApiUser:
    def __init__(self, user, round_id: int):
        self.client, self.round_id = APIClient(), round_id
        self.client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    def claim(self) -> int | None:
        response = self.client.post(
            "/api/v1/reviews/claim/", {"kind": "generated", "round": self.round_id}, format="json"
        )
        assert response.status_code in (200, 204), (response.status_code, response.content)
        return response.json()["id"] if response.status_code == 200 else None

    def decide(self, task_id: int, decision: str, text: str) -> bool:
        response = self.client.post(
            f"/api/v1/reviews/tasks/{task_id}/verdicts/", {"decision": decision, "edited_text": text}, format="json"
        )
        return response.status_code == 201


def _race(overlap: int) -> dict:
    """One run on a fresh queue; what every reviewer was told, and the slots seen held too often."""
    round_ = make_round()
    queue = [ReviewTaskFactory(round=round_, required_reviews=overlap) for _ in range(TASKS)]
    people = [reviewer() for _ in range(REVIEWERS)]
    actors = [(Browser if i % 2 else ApiUser)(user, round_.pk) for i, user in enumerate(people)]
    told = [[] for _ in people]  # (task, reviewer, decision, text) each reviewer was told was recorded
    refused, crowded = [], []

    def work(i: int) -> None:
        while (task_id := actors[i].claim()) is not None:
            holders = ReviewAssignment.objects.filter(task_id=task_id, status__in=["active", "submitted"]).count()
            if holders > overlap:
                crowded.append((task_id, holders))
            decision, text = _decision(task_id, i)
            if not actors[i].decide(task_id, decision, text):
                refused.append((task_id, i))
                return  # a refused vote would be claimed again forever; the assertions report it
            told[i].append((task_id, people[i].pk, decision, text))

    errors = [(i, repr(r)) for i, r in enumerate(_in_threads(REVIEWERS, work)) if isinstance(r, Exception)]
    return {"queue": queue, "told": told, "refused": refused, "crowded": crowded, "errors": errors}


def _check(overlap: int, run: dict) -> tuple[int, int]:
    assert run["errors"] == [] and run["refused"] == []
    assert run["crowded"] == [], "a task was held by more reviewers than its overlap"
    ids = [t.pk for t in run["queue"]]
    for got in run["told"]:
        assert len(got) == len({task for task, *_ in got}), "a reviewer was given one task twice"
    told = sorted(vote for got in run["told"] for vote in got)
    stored = sorted(
        ReviewVerdict.objects.filter(task_id__in=ids).values_list("task_id", "reviewer_id", "decision", "edited_text")
    )
    assert stored == told, "a verdict was lost, duplicated or recorded without its reviewer being told"
    assert len(told) == len(ids) * overlap
    conflicts = 0
    for task in ReviewTask.objects.filter(pk__in=ids):
        votes = {(d, t) for pk, _, d, t in told if pk == task.pk}
        slots = ReviewAssignment.objects.filter(task=task)
        assert slots.filter(status="submitted").count() == overlap and not slots.filter(status="active").exists()
        if len(votes) == 1:
            [(decision, text)] = votes
            assert (task.status, task.decision, task.edited_text) == ("done", decision, text)
        else:
            assert (task.status, task.decision) == ("conflict", ""), votes
            conflicts += 1
    return len(told), conflicts


@pytest.mark.parametrize("overlap", [1, 3])
def test_twenty_reviewers_on_one_queue_hold_no_slot_twice_and_lose_no_verdict(overlap):
    for n in range(RUNS):
        votes, conflicts = _check(overlap, _race(overlap))
        print(f"overlap {overlap} run {n + 1}: {votes} verdicts, {conflicts} conflicts, 0 double claims")
        if overlap == 1:
            assert conflicts == 0
