"""The charts' JSON (viewer role): a training job's curves from the metric rows its worker stored, and an
experiment's evaluations across rounds; the gate links to the review queue when that page exists."""

import pytest
from django.urls import reverse

from apps.console.templatetags.console import review_queue_url
from apps.core.roles import Role
from apps.experiments.models import Evaluation, EvaluationCategory, Round
from apps.experiments.services import experiment_approve_and_train
from apps.training.lifecycle import Outcome, job_claim, training_job_beat, training_job_finish
from apps.training.models import JobStatus, TrainingJob

pytestmark = pytest.mark.django_db


def _rows(steps):
    for step in steps:
        yield (step, "loss", 3.0 / step)
        yield (step, "lr", 1e-3)
        yield (step, "eta_s", 10.0 - step)
        yield (step, "tokens_per_s", 500.0)


def test_training_curves_come_from_the_stored_metric_rows_and_say_when_to_stop(client_for, waiting_approval):
    job = experiment_approve_and_train(experiment_id=waiting_approval.pk)
    url = reverse("console:training-curves", args=[waiting_approval.pk, job.pk])
    client = client_for(Role.VIEWER)
    empty = client.get(url).json()
    assert empty == {"job": job.pk, "round": 1, "status": "queued", "finished": False, "steps": 0, "series": {}}

    claimed = job_claim(TrainingJob, job_id=job.pk, stale_after_s=60)
    training_job_beat(job_id=job.pk, attempt=claimed.attempts, rows=list(_rows([1, 2])), offset=100)
    training_job_beat(job_id=job.pk, attempt=claimed.attempts, rows=list(_rows([3, 4])), offset=200)
    data = client.get(url).json()
    assert data["status"] == "running" and data["finished"] is False and data["steps"] == 4
    assert sorted(data["series"]) == ["loss", "lr"]  # the loss chart's curves, not every metric
    assert data["series"]["loss"] == [[1, 3.0], [2, 1.5], [3, 1.0], [4, 0.75]]
    assert data["series"]["lr"] == [[s, 1e-3] for s in (1, 2, 3, 4)]

    page = client.get(reverse("console:experiment", args=[waiting_approval.pk])).content.decode()
    assert f'data-src="{url}" data-live="1"' in page
    status = client.get(reverse("console:training-status", args=[waiting_approval.pk, job.pk]))
    assert status.status_code == 200 and 'hx-trigger="every 2s"' in status.content.decode()
    assert "0.7500 at step 4" in status.content.decode()

    training_job_finish(job_id=job.pk, attempt=claimed.attempts, outcome=Outcome(JobStatus.SUCCEEDED, 0))
    assert client.get(url).json()["finished"] is True
    done = client.get(reverse("console:training-status", args=[waiting_approval.pk, job.pk]))
    assert done.status_code == 286 and "hx-trigger" not in done.content.decode()
    assert client.get(reverse("console:training-curves", args=[waiting_approval.pk + 1, job.pk])).status_code == 404
    assert client_for(None).get(url).status_code == 403  # (the same test client, now without a role)


def test_the_evaluations_json_and_table_hold_each_round_and_category(client_for, waiting_approval):
    experiment = waiting_approval
    second = Round.objects.create(experiment=experiment, index=2)
    first = Round.objects.get(experiment=experiment, index=1)
    for round_, rate, math_rate in ((first, 0.30, 0.50), (second, 0.42, 0.25)):
        evaluation = Evaluation.objects.create(
            experiment=experiment, round=round_, stage="evaluate", n=30, judged=30, wins=9, ties=6, losses=15,
            win_rate=rate, ci_low=rate - 0.1, ci_high=rate + 0.1, lc_win_rate=rate - 0.02,
        )  # fmt: skip
        EvaluationCategory.objects.create(
            evaluation=evaluation, category="Math", n=10, win_rate=math_rate, ci_low=0.1, ci_high=0.7,
            regressed=round_ is second,
        )  # fmt: skip
        EvaluationCategory.objects.create(
            evaluation=evaluation, category="Code Generation", n=20, win_rate=rate, ci_low=0.2, ci_high=0.6
        )
    data = client_for(Role.VIEWER).get(reverse("console:evaluation-data", args=[experiment.pk])).json()
    assert [r["round"] for r in data["rounds"]] == [1, 2]
    assert data["rounds"][1]["win_rate"] == 0.42 and data["rounds"][1]["ci"] == [pytest.approx(0.32), 0.52]
    assert data["rounds"][1]["lc_win_rate"] == pytest.approx(0.40)
    assert data["categories"] == ["Code Generation", "Math"]
    assert [(row["round"], row["win_rate"], row["regressed"]) for row in data["by_category"]["Math"]] == [
        (1, 0.5, False),
        (2, 0.25, True),
    ]
    page = client_for(Role.VIEWER).get(reverse("console:experiment", args=[experiment.pk])).content.decode()
    assert 'data-testid="evaluations"' in page and "42.0%" in page and "32.0% – 52.0%" in page
    assert 'data-chart="categories"' in page and 'data-chart="category-rounds"' in page


def test_no_evaluation_yet_is_said_plainly(client_for, draft):
    page = client_for(Role.VIEWER).get(reverse("console:experiment", args=[draft.pk])).content.decode()
    assert 'data-testid="no-evaluation"' in page and 'data-chart="winrate"' not in page


@pytest.mark.urls("tests.apps.console.queue_urls")
def test_a_gate_links_to_its_review_queue_when_the_queue_page_exists(client_for, waiting_review):
    round_id = Round.objects.get(experiment=waiting_review, index=1).pk
    assert review_queue_url("verdict", round_id) == f"/queue-test/verdict/?round={round_id}"
    # The live area alone: the full page's navigation names the review app's other pages.
    page = client_for(Role.VIEWER).get(reverse("console:experiment-live", args=[waiting_review.pk])).content.decode()
    assert f'href="/queue-test/verdict/?round={round_id}">review</a>' in page


@pytest.mark.urls("tests.apps.console.no_queue_urls")
def test_without_a_review_queue_page_the_gate_has_no_link():
    assert review_queue_url("verdict", 3) == ""
