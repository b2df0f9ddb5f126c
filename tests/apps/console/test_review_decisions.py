"""The review pages' POSTs: every decision of every kind records what the service records, the gate's open
count falls and the round's experiment is woken, without JavaScript (redirects) and with HTMX (the next
item in the panel); skips, releases, drafts, conflicts and bulk decisions; roles, with 403 for a forged
POST."""

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from apps.core.roles import Role
from apps.experiments import wake
from apps.experiments.selectors import gate_open_count
from apps.reviews.kinds import ALLOWED, ReviewError
from apps.reviews.models import ReviewAssignment, ReviewDraft, ReviewTask, ReviewVerdict
from tests.apps.console.review_builders import KINDS, build, make_round, verdict_task
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
EDITS = {"task_label": "Math"}  # a task label's edit is a category of the vocabulary


@pytest.fixture
def sent(monkeypatch):
    calls = []
    monkeypatch.setattr(wake, "send", lambda name, *args: calls.append((name, *args)))
    return calls


@pytest.fixture
def reviewer(client):
    user = UserFactory(role=Role.REVIEWER)
    client.force_login(user)
    return user


def _url(name, kind, pk=None):
    return reverse(f"reviews:{name}", args=[kind] if pk is None else [kind, pk])


CASES = [(kind, decision) for kind in KINDS for decision in ALLOWED[kind]]


@pytest.mark.parametrize(("kind", "decision"), CASES)
def test_every_decision_of_every_kind_is_recorded_and_wakes_the_gate(
    kind, decision, client, reviewer, sent, django_capture_on_commit_callbacks
):
    round_ = make_round()
    task = build(kind, round_)
    build(kind, round_)  # a second task keeps the gate waiting
    assert gate_open_count(round_id=round_.pk, kind=kind) == 2
    text = EDITS.get(kind, "An edited text with *markdown*.") if decision == "edit" else ""
    wake.woken(round_.experiment_id)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            _url("decide", kind, task.pk), {"decision": decision, "edited_text": text, "note": "checked by hand"}
        )
    assert response.status_code == 302 and response["Location"] == _url("queue", kind)
    task.refresh_from_db()
    assert (task.status, task.decision, task.edited_text, task.note) == ("done", decision, text, "checked by hand")
    verdict = ReviewVerdict.objects.get(task=task)
    assert (verdict.reviewer, verdict.decision) == (reviewer, decision)
    assert gate_open_count(round_id=round_.pk, kind=kind) == 1
    assert sent == [(wake.ADVANCE_TASK, round_.experiment_id)]
    # The message of the page is on the next page.
    page = client.get(response["Location"])
    assert f"Task #{task.pk}" in page.content.decode()


def test_retry_on_an_unparsable_reply_asks_for_a_fresh_sample_and_drop_does_not(
    client, reviewer, django_capture_on_commit_callbacks
):
    from apps.llm.models import LLMCall, LLMCallUse

    round_ = make_round()
    retried, dropped = build("invalid_reply", round_), build("invalid_reply", round_)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_url("decide", "invalid_reply", retried.pk), {"decision": "retry"})
        client.post(_url("decide", "invalid_reply", dropped.pk), {"decision": "reject"})
    calls = {t.pk: LLMCallUse.objects.get(pk=t.subject_id).call for t in (retried, dropped)}
    fresh = LLMCall.objects.get(resample_of=calls[retried.pk])
    assert fresh.status == LLMCall.Status.PENDING and fresh.sample_index == calls[retried.pk].sample_index + 1
    assert not LLMCall.objects.filter(resample_of=calls[dropped.pk]).exists()


def test_with_htmx_a_vote_answers_the_panel_of_the_next_claimed_task(client, reviewer):
    round_ = make_round()
    first, second = verdict_task(round_, contested=True), verdict_task(round_)
    page = client.get(_url("queue", "verdict"))
    assert page.context["task"] == first  # contested first
    response = client.post(_url("decide", "verdict", first.pk), {"decision": "flip"}, **HX)
    assert response.status_code == 200
    assert response["HX-Push-Url"] == _url("queue", "verdict")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="focus-panel"') and "<html" not in body
    assert f'data-task="{second.pk}"' in body and f"Task #{first.pk}: flip the verdict; decided." in body
    assert ReviewAssignment.objects.get(task=second, reviewer=reviewer).status == "active"


def test_a_refused_vote_shows_the_reason_on_the_page(client, reviewer):
    task = verdict_task(make_round())
    response = client.post(_url("decide", "verdict", task.pk), {"decision": "reject"})
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert "Select a valid choice. reject is not one of the available choices." in page.content.decode()
    response = client.post(_url("decide", "rewrite", build("rewrite", task.round).pk), {"decision": "edit"}, **HX)
    assert response.status_code == 422
    assert (
        "An edit on review task" in response.content.decode() and "needs the edited text" in response.content.decode()
    )
    assert not ReviewVerdict.objects.exists()


def test_a_task_label_edit_outside_the_vocabulary_is_refused_with_the_choices(client, reviewer):
    task = build("task_label", make_round())
    response = client.post(_url("decide", "task_label", task.pk), {"decision": "edit", "edited_text": "Cooking"}, **HX)
    assert response.status_code == 422
    assert "&#x27;Cooking&#x27; on review task" in response.content.decode() and "Math" in response.content.decode()
    task.refresh_from_db()
    assert task.status != "done"


def test_skip_releases_the_task_and_claims_the_next_one_not_skipped(client, reviewer):
    round_ = make_round()
    a, b = verdict_task(round_), verdict_task(round_)
    assert client.get(_url("queue", "verdict")).context["task"] == a
    response = client.post(_url("skip", "verdict", a.pk), **HX)
    assert response.context["task"] == b
    assert ReviewAssignment.objects.get(task=a, reviewer=reviewer).status == "released"
    assert ReviewTask.objects.get(pk=a.pk).status == "open"
    # "previous" walks back to the skipped task, which can still be decided from there.
    assert response.context["nav"].previous_url == _url("task", "verdict", a.pk)
    client.post(_url("decide", "verdict", b.pk), {"decision": "accept"})
    # Only the skipped task is left: the queue starts over with it.
    assert client.get(_url("queue", "verdict")).context["task"] == a


def test_release_gives_the_slot_back_as_a_beacon_or_a_button(client, reviewer):
    round_ = make_round()
    task = verdict_task(round_)
    client.get(_url("queue", "verdict"))
    assert ReviewTask.objects.get(pk=task.pk).status == "claimed"
    response = client.post(_url("release", "verdict", task.pk), {"beacon": "1"})
    assert response.status_code == 204
    assert ReviewTask.objects.get(pk=task.pk).status == "open"
    client.get(_url("queue", "verdict"))
    response = client.post(_url("release", "verdict", task.pk))
    assert response.status_code == 302 and response["Location"] == reverse("reviews:overview")
    assert ReviewTask.objects.get(pk=task.pk).status == "open"


def test_two_reviewers_never_hold_the_same_task(client):
    round_ = make_round()
    tasks = [verdict_task(round_) for _ in range(2)]
    alice, bob = UserFactory(role=Role.REVIEWER), UserFactory(role=Role.REVIEWER)
    client.force_login(alice)
    first = client.get(_url("queue", "verdict")).context["task"]
    client.force_login(bob)
    second = client.get(_url("queue", "verdict")).context["task"]
    assert {first, second} == set(tasks)
    client.force_login(UserFactory(role=Role.REVIEWER))
    page = client.get(_url("queue", "verdict"))
    assert page.context["task"] is None and "Nothing waiting in this queue" in page.content.decode()
    assert "held by other reviewers" in page.content.decode()


def test_a_draft_is_saved_loaded_into_the_form_and_discarded(client, reviewer):
    task = build("rewrite", make_round())
    client.get(_url("queue", "rewrite"))
    response = client.post(
        _url("draft", "rewrite", task.pk),
        {"decision": "edit", "edited_text": "My half-done edit", "note": "later"},
        **HX,
    )
    assert response.status_code == 200 and "Draft saved at" in response.content.decode()
    draft = ReviewDraft.objects.get(task=task, reviewer=reviewer)
    assert (draft.decision, draft.edited_text, draft.note) == ("edit", "My half-done edit", "later")
    page = client.get(_url("queue", "rewrite"))
    body = page.content.decode()
    assert 'data-selected="edit"' in body and "My half-done edit</textarea>" in body and 'value="later"' in body
    response = client.post(_url("draft-discard", "rewrite", task.pk), {"current": "1"})
    assert response.status_code == 302 and response["Location"] == _url("queue", "rewrite")
    assert not ReviewDraft.objects.exists()
    assert "My half-done edit" not in client.get(_url("queue", "rewrite")).content.decode()


def test_without_javascript_a_draft_posts_and_comes_back_to_the_task(client, reviewer):
    task = build("answer", make_round())
    response = client.post(_url("draft", "answer", task.pk), {"decision": "reject"})
    assert response.status_code == 302 and response["Location"] == _url("task", "answer", task.pk)
    assert "Draft saved at" in client.get(response["Location"]).content.decode()


def test_overlap_conflict_is_settled_by_an_operator_only(client, sent, django_capture_on_commit_callbacks):
    round_ = make_round()
    task = verdict_task(round_, required=2)
    alice, bob = UserFactory(role=Role.REVIEWER), UserFactory(role=Role.REVIEWER)
    for user, decision in ((alice, "accept"), (bob, "flip")):
        client.force_login(user)
        client.post(_url("decide", "verdict", task.pk), {"decision": decision})
    task.refresh_from_db()
    assert task.status == "conflict" and gate_open_count(round_id=round_.pk, kind="verdict") == 1
    client.force_login(UserFactory(role=Role.REVIEWER))
    page = client.get(_url("task", "verdict", task.pk))
    assert page.context["can_resolve"] is False and "an operator settles it" in page.content.decode()
    assert client.post(_url("resolve", "verdict", task.pk), {"decision": "flip"}).status_code == 403
    operator = UserFactory(role=Role.OPERATOR)
    client.force_login(operator)
    page = client.get(_url("task", "verdict", task.pk))
    assert page.context["can_resolve"] is True and 'data-testid="resolve-form"' in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url("resolve", "verdict", task.pk), {"decision": "flip", "note": "the student erred"})
    assert response.status_code == 302
    task.refresh_from_db()
    assert (task.status, task.decision, task.resolved_by) == ("done", "flip", operator)
    assert gate_open_count(round_id=round_.pk, kind="verdict") == 0
    assert sent == [(wake.ADVANCE_TASK, round_.experiment_id)]


def test_bulk_decisions_vote_on_the_selected_tasks_and_name_the_skipped(client, reviewer):
    round_ = make_round()
    tasks = [build("generated", round_) for _ in range(3)]
    done = tasks[0]
    client.post(_url("decide", "generated", done.pk), {"decision": "accept"})
    back = _url("table", "generated") + "?status=open"
    response = client.post(
        _url("bulk", "generated"), {"task": [t.pk for t in tasks], "decision": "reject", "note": "dupes", "back": back}
    )
    assert response.status_code == 302 and response["Location"] == back
    assert set(ReviewTask.objects.filter(pk__in=[t.pk for t in tasks[1:]]).values_list("status", "decision")) == {
        ("done", "reject")
    }
    body = client.get(back).content.decode()
    assert "reject: 2 task(s) voted on, 2 of them now decided." in body
    assert f"1 skipped: #{done.pk}: The review task #{done.pk} is already decided" in body
    assert gate_open_count(round_id=round_.pk, kind="generated") == 0


def test_bulk_set_category_on_task_labels_and_a_foreign_back_url_is_ignored(client, reviewer):
    round_ = make_round()
    tasks = [build("task_label", round_) for _ in range(2)]
    response = client.post(
        _url("bulk", "task_label"),
        {
            "task": [t.pk for t in tasks],
            "decision": "edit",
            "edited_text": "code generation",
            "back": "//evil.example/",
        },
    )
    assert response["Location"] == _url("table", "task_label")
    assert set(ReviewTask.objects.filter(pk__in=[t.pk for t in tasks]).values_list("decision", "edited_text")) == {
        ("edit", "Code Generation")
    }
    response = client.post(_url("bulk", "task_label"), {"decision": "accept"})
    assert "Select some tasks first." in client.get(response["Location"]).content.decode()


@pytest.mark.parametrize("role", [None, Role.VIEWER])
@pytest.mark.parametrize("action", ["decide", "skip", "release", "draft", "draft-discard", "resolve"])
def test_a_forged_post_without_the_reviewer_role_is_refused_with_the_styled_403(client, role, action):
    task = verdict_task(make_round())
    client.force_login(UserFactory(role=role))
    response = client.post(_url(action, "verdict", task.pk), {"decision": "accept"})
    assert response.status_code == 403
    body = response.content.decode()
    assert 'data-testid="error-403"' in body and "This needs the" in body
    assert not ReviewVerdict.objects.exists() and not ReviewDraft.objects.exists()
    assert ReviewTask.objects.get(pk=task.pk).status == "open"
    response = client.post(_url("bulk", "verdict"), {"task": [task.pk], "decision": "accept"})
    assert response.status_code == 403


def test_posts_need_the_csrf_token(reviewer):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(reviewer)
    task = verdict_task(make_round())
    assert strict.post(_url("decide", "verdict", task.pk), {"decision": "accept"}).status_code == 403
    assert ReviewTask.objects.get(pk=task.pk).status == "open"


def test_a_get_on_an_action_is_not_allowed(client, reviewer):
    task = verdict_task(make_round())
    assert client.get(_url("decide", "verdict", task.pk)).status_code == 405


def test_claiming_past_skipped_tasks_never_hands_one_task_to_two_reviewers():
    from apps.reviews.claiming import review_claim_next

    def claim(skipped=(), **kwargs):
        return review_claim_next(exclude_ids=skipped, **kwargs)

    round_ = make_round()
    a, b, c = (verdict_task(round_) for _ in range(3))
    alice, bob, carol = (UserFactory(role=Role.REVIEWER) for _ in range(3))
    assert claim(reviewer=alice, kind="verdict") == a
    assert claim(reviewer=alice, kind="verdict", skipped=[a.pk]) == b  # a is still his, b taken besides
    assert claim(reviewer=bob, kind="verdict", skipped=[b.pk]) == c  # a and b are held
    assert claim(reviewer=carol, kind="verdict") is None
    assert claim(reviewer=alice, kind="verdict", skipped=[a.pk], round_ids=[make_round().pk]) is None
    assert claim(reviewer=bob, kind="verdict", skipped=[a.pk]) == c  # his claim again, renewed
    holders = ReviewAssignment.objects.filter(status="active").values_list("task_id", "reviewer_id")
    assert sorted(holders) == sorted([(a.pk, alice.pk), (b.pk, alice.pk), (c.pk, bob.pk)])
    with pytest.raises(ReviewError, match="A lease is from 1 second"):
        claim(reviewer=alice, kind="verdict", skipped=[a.pk], lease_s=0)
    viewer = UserFactory(role=Role.VIEWER)
    with pytest.raises(PermissionDenied, match="This needs the reviewer role"):
        claim(reviewer=viewer, kind="verdict", skipped=[a.pk])
