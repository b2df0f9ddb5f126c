"""The overlap migration keeps existing review data working: a claim with a lease becomes the claimant's
assignment, a claim without one reopens the task, and a decided task gets its resolution from its latest
verdict and one submitted vote per reviewer."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("reviews", "0002_reviewtask_kind_answer")]
AFTER = [("reviews", "0003_overlap_assignments_resolution")]


@pytest.mark.django_db(transaction=True)
def test_claims_and_decisions_are_carried_over():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    User, Task, Verdict = (
        old.get_model(*name.split(".")) for name in ("auth.User", "reviews.ReviewTask", "reviews.ReviewVerdict")
    )
    ContentType = old.get_model("contenttypes", "ContentType")
    kind = ContentType.objects.get_or_create(app_label="datasets", model="instruction")[0]
    alice, bob = User.objects.create(username="alice"), User.objects.create(username="bob")
    lease = timezone.now() + timedelta(minutes=5)

    def task(n, **fields):
        return Task.objects.create(kind="generated", subject_type=kind, subject_id=n, **fields)

    held = task(1, status="claimed", claimed_by=alice, lease_expires_at=lease)
    stale = task(2, status="claimed", claimed_by=bob)
    decided = task(3, status="done")
    Verdict.objects.create(task=decided, reviewer=alice, decision="accept")
    Verdict.objects.create(task=decided, reviewer=bob, decision="reject", note="duplicate")
    Verdict.objects.create(task=decided, reviewer=alice, decision="edit", edited_text="Better.", note="fixed")
    untouched = task(4)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps
    Task, Assignment = new.get_model("reviews", "ReviewTask"), new.get_model("reviews", "ReviewAssignment")
    assert list(
        Assignment.objects.filter(task_id=held.pk).values_list("reviewer_id", "status", "lease_expires_at")
    ) == [(alice.pk, "active", lease)]
    assert Task.objects.get(pk=held.pk).status == "claimed"
    assert Task.objects.get(pk=stale.pk).status == "open" and not Assignment.objects.filter(task_id=stale.pk).exists()
    done = Task.objects.get(pk=decided.pk)
    assert (done.status, done.decision, done.edited_text, done.note, done.resolved_by_id) == (
        "done", "edit", "Better.", "fixed", alice.pk,
    )  # fmt: skip
    votes = dict(Assignment.objects.filter(task_id=decided.pk).values_list("reviewer_id", "verdict__decision"))
    assert votes == {alice.pk: "edit", bob.pk: "reject"}
    assert Task.objects.get(pk=untouched.pk).required_reviews == 1
