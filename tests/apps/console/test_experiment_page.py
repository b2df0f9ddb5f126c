"""The experiments list and an experiment's page: rounds as a timeline, stage progress that polls until the
stage ends (286), gates, the budget, and the operator's actions (pause, resume, cancel, approve-and-train)
with and without JavaScript; viewers read and are refused every action."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.console.selectors import experiment_page_rows
from apps.core.htmx import HTMX_STOP_POLLING
from apps.core.roles import Role
from apps.experiments.models import Experiment, StageRun
from apps.training.models import TrainingJob
from tests.apps.console.conftest import lion
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db
ACTIONS = ("start", "pause", "resume", "cancel", "approve")


def _page(client, experiment) -> str:
    response = client.get(reverse("console:experiment", args=[experiment.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _stage(experiment, name) -> StageRun:
    return StageRun.objects.get(round__experiment=experiment, round__index=1, name=name)


def _approve_button(page: str) -> str:
    return re.search(r'<button[^>]*data-testid="approve"[^>]*>', page).group(0)


def test_the_list_shows_each_experiment_newest_first_a_page_at_a_time(client_for, llm_server):
    first, second, third = (lion(llm_server, name=f"list-{i}", budget={"usd": 10}) for i in range(3))
    page = client_for(Role.VIEWER).get(reverse("console:experiments")).content.decode()
    names = re.findall(r'<a href="/experiments/\d+/">(list-\d)</a>', page)
    assert names == ["list-2", "list-1", "list-0"]
    assert page.count('<td class="num">1/2</td>') == 3  # round 1 is made with the experiment; the config has 2
    assert page.count("$10.00") == 3

    rows, next_before = experiment_page_rows(limit=2)
    assert [r.name for r in rows] == ["list-2", "list-1"] and next_before == second.pk
    rows, next_before = experiment_page_rows(before=next_before, limit=2)
    assert [r.name for r in rows] == ["list-0"] and next_before is None
    older = client_for(Role.VIEWER).get(reverse("console:experiments"), {"before": first.pk}).content.decode()
    assert "No older experiments." in older
    assert third.pk > second.pk > first.pk


def test_the_list_counts_rounds_and_the_stage_runs_cost(client_for, waiting_approval):
    StageRun.objects.filter(pk=_stage(waiting_approval, "teacher_train").pk).update(cost="0.25")
    rows, _ = experiment_page_rows()
    assert rows[0].round_shown == 1 and rows[0].rounds_planned == 2 and float(rows[0].cost) == 0.25
    page = client_for(Role.VIEWER).get(reverse("console:experiments")).content.decode()
    assert "1/2" in page and "$0.2500" in page


def test_an_empty_list_says_so_and_who_creates_experiments(client_for):
    viewer = client_for(Role.VIEWER).get(reverse("console:experiments")).content.decode()
    assert "No experiments yet." in viewer and "An operator creates experiments" in viewer
    assert reverse("console:experiment-new") not in viewer
    operator = client_for(Role.OPERATOR).get(reverse("console:experiments")).content.decode()
    assert reverse("console:experiment-new") in operator


def test_pages_need_a_role(client, client_for, draft):
    assert client.get(reverse("console:experiments")).status_code == 302  # to the login page
    nobody = client_for(None)
    for url in (reverse("console:experiments"), reverse("console:experiment", args=[draft.pk])):
        assert nobody.get(url).status_code == 403


def test_the_timeline_shows_every_round_and_stage_and_polls_only_the_current_stage(client_for, waiting_approval):
    page = _page(client_for(Role.VIEWER), waiting_approval)
    stages = re.findall(r'data-stage="([a-z_]+)" data-status="([a-z]+)"', page)
    expected = list(
        StageRun.objects.filter(round__experiment=waiting_approval).order_by("position").values_list("name", "status")
    )
    assert stages == expected and stages[:2] == [("teacher_train", "done"), ("train", "waiting")]
    polling = re.findall(r'hx-get="(/experiments/\d+/stages/(\d+)/\?seen=(\w+))" hx-trigger="every 2s"', page)
    assert [(int(pk), seen) for _, pk, seen in polling] == [(_stage(waiting_approval, "train").pk, "waiting")]
    assert 'data-round="2"' in page and "not started" in page
    assert 'data-testid="round-of">1 of 2<' in page
    assert "12/12" in page  # the teacher answered the 12 seeds


def test_stage_progress_polls_until_the_stage_ends_with_286(client_for, waiting_approval):
    client = client_for(Role.VIEWER)
    train, done = _stage(waiting_approval, "train"), _stage(waiting_approval, "teacher_train")
    live = client.get(reverse("console:stage-progress", args=[waiting_approval.pk, train.pk]), {"seen": "waiting"})
    assert live.status_code == 200 and 'hx-trigger="every 2s"' in live.content.decode()
    assert "HX-Trigger-After-Settle" not in live
    assert f'id="budget-{waiting_approval.pk}" data-testid="budget" hx-swap-oob="true"' in live.content.decode()

    ended = client.get(reverse("console:stage-progress", args=[waiting_approval.pk, done.pk]), {"seen": "running"})
    assert ended.status_code == HTMX_STOP_POLLING
    assert "hx-trigger" not in ended.content.decode().split("</li>")[0]
    assert ended["HX-Trigger-After-Settle"] == "consoleChanged"  # the page refreshes what comes next

    changed = client.get(reverse("console:stage-progress", args=[waiting_approval.pk, train.pk]), {"seen": "running"})
    assert changed.status_code == 200 and changed["HX-Trigger-After-Settle"] == "consoleChanged"
    assert client.get(reverse("console:stage-progress", args=[waiting_approval.pk + 1, train.pk])).status_code == 404


def test_the_live_area_stops_polling_once_the_experiment_has_ended(client_for, draft):
    client = client_for(Role.VIEWER)
    assert client.get(reverse("console:experiment-live", args=[draft.pk])).status_code == 200
    Experiment.objects.filter(pk=draft.pk).update(status=Experiment.Status.CANCELLED)
    assert client.get(reverse("console:experiment-live", args=[draft.pk])).status_code == HTMX_STOP_POLLING


def test_approve_and_train_is_enabled_for_operators_when_the_round_waits_for_approval(client_for, waiting_approval):
    page = _page(client_for(Role.OPERATOR), waiting_approval)
    assert "disabled" not in _approve_button(page)
    assert 'hx-confirm="Approve round 1 of' in page


def test_approve_and_train_is_disabled_with_the_reason_until_the_gates_hold(client_for, waiting_review):
    page = _page(client_for(Role.OPERATOR), waiting_review)
    assert "disabled" in _approve_button(page)
    reason = re.search(r'data-testid="approve-reason">(.*?)</p>', page).group(1)
    gate = _stage(waiting_review, "gate_verdicts")
    assert reason == f"Round 1 waits for review: gate_verdicts ({gate.total} undecided)."
    assert gate.total > 0 and f"{gate.total} of {gate.total} undecided" in page


def test_a_viewer_sees_no_action_buttons(client_for, waiting_approval):
    page = _page(client_for(Role.VIEWER), waiting_approval)
    assert 'data-testid="actions"' not in page and 'data-testid="approve"' not in page
    for action in ACTIONS:
        assert reverse(f"console:experiment-{action}", args=[waiting_approval.pk]) not in page


@pytest.mark.parametrize("role", [Role.VIEWER, Role.REVIEWER])
def test_a_forged_post_by_a_viewer_or_reviewer_is_refused(client_for, waiting_approval, role):
    client = client_for(role)
    for action in ACTIONS:
        url = reverse(f"console:experiment-{action}", args=[waiting_approval.pk])
        assert client.post(url).status_code == 403
        assert client.post(url, HTTP_HX_REQUEST="true").status_code == 403
        assert client.get(url).status_code == 403  # not even the confirmation page
    waiting_approval.refresh_from_db()
    assert waiting_approval.status == Experiment.Status.WAITING_APPROVAL
    assert not TrainingJob.objects.exists()


def test_every_action_needs_the_csrf_token(waiting_approval):
    operator = user_with_role(Role.OPERATOR)
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    url = reverse("console:experiment-approve", args=[waiting_approval.pk])
    assert client.post(url).status_code == 403
    assert not TrainingJob.objects.exists()
    confirm = client.get(url)  # the confirmation page carries the token
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', confirm.content.decode()).group(1)
    assert client.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    assert TrainingJob.objects.filter(round__experiment=waiting_approval).count() == 1


def test_approve_and_train_through_the_view_is_idempotent(client_for, waiting_approval):
    client = client_for(Role.OPERATOR)
    url = reverse("console:experiment-approve", args=[waiting_approval.pk])
    first = client.post(url, follow=True)
    job = TrainingJob.objects.get(round__experiment=waiting_approval)
    assert f"Approved: training job #{job.pk} is queued." in first.content.decode()
    again = client.post(url, HTTP_HX_REQUEST="true")
    assert again.status_code == 200 and again.templates[0].name == "console/_live.html"
    assert f"training job #{job.pk}" in again.content.decode()
    assert TrainingJob.objects.filter(round__experiment=waiting_approval).count() == 1
    assert job.requested_by == client.user
    waiting_approval.refresh_from_db()
    assert waiting_approval.status == Experiment.Status.TRAINING
    page = _page(client, waiting_approval)
    assert "disabled" in _approve_button(page) and f"its training job #{job.pk} is queued" in page
    assert 'data-testid="job-status" data-status="queued"' in page


def test_pause_resume_and_cancel_without_javascript(client_for, waiting_approval):
    client = client_for(Role.OPERATOR)
    pk = waiting_approval.pk
    confirm = client.get(reverse("console:experiment-pause", args=[pk])).content.decode()
    assert "Pause lion-" in confirm and 'method="post"' in confirm
    response = client.post(reverse("console:experiment-pause", args=[pk]))
    assert response.status_code == 302 and response["Location"] == reverse("console:experiment", args=[pk])
    waiting_approval.refresh_from_db()
    assert waiting_approval.status == Experiment.Status.PAUSED
    assert waiting_approval.status_reason == f"Paused by {client.user.username}."
    page = _page(client, waiting_approval)
    assert 'data-testid="resume"' in page and 'data-testid="pause"' not in page
    assert "resume it first" in page

    client.post(reverse("console:experiment-resume", args=[pk]))
    waiting_approval.refresh_from_db()
    assert waiting_approval.status == Experiment.Status.WAITING_APPROVAL

    client.post(reverse("console:experiment-cancel", args=[pk]))
    waiting_approval.refresh_from_db()
    assert waiting_approval.status == Experiment.Status.CANCELLED
    page = _page(client, waiting_approval)
    assert 'data-testid="cancel"' not in page and 'data-testid="pause"' not in page

    # An action the state machine refuses says why, with or without JavaScript.
    refused = client.post(reverse("console:experiment-resume", args=[pk]), follow=True).content.decode()
    assert "not paused: nothing to resume" in refused
    partial = client.post(reverse("console:experiment-resume", args=[pk]), HTTP_HX_REQUEST="true")
    assert 'class="notice error"' in partial.content.decode()


def test_with_htmx_an_action_answers_with_the_live_area(client_for, waiting_approval):
    client = client_for(Role.OPERATOR)
    response = client.post(reverse("console:experiment-pause", args=[waiting_approval.pk]), HTTP_HX_REQUEST="true")
    text = response.content.decode()
    assert response.status_code == 200 and text.startswith('<div id="live"')
    assert 'data-testid="action-message">Paused.</p>' in text and 'data-status="paused"' in text


def test_a_draft_is_started_from_its_page(client_for, draft):
    client = client_for(Role.OPERATOR)
    page = _page(client, draft)
    assert 'data-testid="start"' in page and 'data-testid="pause"' not in page
    assert "The experiment has not been started." in page
    response = client.post(reverse("console:experiment-start", args=[draft.pk]), HTTP_HX_REQUEST="true")
    assert 'data-testid="action-message">Started.</p>' in response.content.decode()
    draft.refresh_from_db()
    assert draft.status == Experiment.Status.RUNNING
    assert 'data-testid="start"' not in _page(client, draft)
