"""The operator's console in Chromium: an operator creates the Lion demo from the form (estimate first),
starts it with real Celery workers (default + llm, and a gpu worker that trains builtin:tiny on CPU),
watches stage progress change without reloading, approves and trains, and sees the loss curve get points;
a viewer sees no action buttons and is refused a forged POST."""

import os
from pathlib import Path

import pytest

from apps.core.roles import Role
from apps.datasets.demo import demo_datasets_load
from apps.experiments.models import Experiment
from apps.training.models import TrainingJob, TrainingMetric
from tests.conftest import REPO_ROOT
from tests.factories import TEST_PASSWORD, UserFactory
from tests.integration.worker import WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = REPO_ROOT / "var" / "test" / "screenshots"


def _login(page, base, username):
    page.goto(f"{base}/")
    page.fill("#id_username", username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _shot(page, name):
    page.screenshot(path=SCREENSHOTS / f"console-{name}.png", full_page=True)


@pytest.fixture
def workers(tmp_path, settings):
    # Jobs under this test's own folder: job ids restart with every test database, and a job folder left
    # by an earlier run would be resumed from its checkpoint.
    root = tmp_path / "training"
    settings.RETORT_TRAINING_ROOT = root
    cache = Path(os.environ.get("RETORT_VAR_DIR", "var/test")).resolve() / "models"
    env = {"RETORT_TRAINING_ROOT": root, "RETORT_MODEL_CACHE": cache, "RETORT_TRAINING_HEARTBEAT_S": "0.5"}
    started = [WorkerProcess(tmp_path, queues="default,llm", **env).wait_ready()]
    started.append(WorkerProcess(tmp_path, queues="gpu", **env).wait_ready())
    yield started
    for worker in started:
        worker.stop()


def test_operator_creates_starts_approves_and_watches_the_loss_curve(page, browser, live_server, workers):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    demo_datasets_load()
    operator = UserFactory(role=Role.OPERATOR)
    base = live_server.url
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations (hx-confirm)
    _login(page, base, operator.username)

    page.click("nav >> text=Experiments")
    assert "No experiments yet." in page.inner_text("[data-testid=empty]")
    _shot(page, "list-empty")
    page.click("[data-testid=new-experiment]")
    page.click("[data-testid=demo-lion]")
    text = page.input_value("#id_config")
    assert "name: lion-demo" in text and "max_steps: 200" in text
    # The operator edits the config in place: a shorter training run (200 steps take minutes on two cores).
    page.fill("#id_config", text.replace("max_steps: 200", "max_steps: 30"))

    # A mistake first: the seed field is checked as the config's `seed` key, shown beside it.
    page.fill("#id_seed", "twelve")
    page.click("[data-testid=estimate]")
    page.wait_for_selector("[data-testid=error-seed]")
    assert page.inner_text("[data-testid=error-seed]") == 'seed: expected a whole number, got "twelve"'
    _shot(page, "new-error")
    page.fill("#id_seed", "")
    page.click("[data-testid=estimate]")
    page.wait_for_selector("[data-testid=estimate-table]")
    assert "teacher_train" in page.inner_text("[data-testid=estimate-table]")
    assert not Experiment.objects.exists()
    _shot(page, "new-estimate")

    page.click("[data-testid=create]")
    page.wait_for_selector("[data-testid=experiment-status]")
    experiment = Experiment.objects.get(name="lion-demo")
    assert page.url == f"{base}/experiments/{experiment.pk}/"
    assert page.inner_text("[data-testid=experiment-status]") == "draft"
    teacher = page.locator("[data-stage=teacher_train]")
    assert teacher.get_attribute("data-status") == "pending"
    assert teacher.locator("[data-testid=stage-counts]").inner_text() == "0/0"
    _shot(page, "draft")

    page.click("[data-testid=start]")
    # The stage row polls itself: its counts change with no reload until the stage is done (then 286).
    page.wait_for_selector("[data-stage=teacher_train][data-status=done]", timeout=120_000)
    assert page.locator("[data-stage=teacher_train] [data-testid=stage-counts]").inner_text() == "40/40"
    page.wait_for_selector("[data-testid=experiment-status]:has-text('waiting for approval')", timeout=60_000)
    approve = page.locator("[data-testid=approve]")
    assert approve.is_enabled()
    _shot(page, "waiting-approval")

    approve.click()
    page.wait_for_selector("[data-testid=job-status]")
    job = TrainingJob.objects.get(round__experiment=experiment)
    assert job.requested_by_id == operator.pk
    page.wait_for_function(
        "Number(document.querySelector('[data-testid=loss-chart]')?.dataset.points || 0) > 0", timeout=180_000
    )
    first_points = int(page.get_attribute("[data-testid=loss-chart]", "data-points"))
    _shot(page, "training")
    page.wait_for_selector("[data-testid=job-status][data-status=succeeded]", timeout=240_000)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.steps == 30
    # Once the job has ended the chart holds every stored loss and learning-rate row.
    stored = TrainingMetric.objects.filter(job=job, name__in=["loss", "lr"]).count()
    assert stored >= 2 * 3 and first_points <= stored
    page.wait_for_function(
        f"Number(document.querySelector('[data-testid=loss-chart]')?.dataset.points || 0) === {stored}",
        timeout=30_000,
    )
    _shot(page, "trained")

    # A viewer reads the same page with no action buttons and is refused a forged POST.
    viewer = UserFactory(role=Role.VIEWER)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    other = context.new_page()
    _login(other, base, viewer.username)
    other.goto(f"{base}/experiments/{experiment.pk}/")
    other.wait_for_selector("[data-testid=timeline]")
    assert other.locator("[data-testid=actions]").count() == 0
    assert other.locator("button").filter(has_text="Approve").count() == 0
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    forged = other.request.post(
        f"{base}/experiments/{experiment.pk}/cancel/", headers={"X-CSRFToken": token, "Referer": f"{base}/"}
    )
    assert forged.status == 403
    assert Experiment.objects.get(pk=experiment.pk).status != Experiment.Status.CANCELLED
    other.screenshot(path=SCREENSHOTS / "console-viewer.png", full_page=True)
    other.click("nav >> text=Experiments")
    row = other.locator("[data-testid=experiment-rows] tbody tr")
    assert row.count() == 1 and "lion-demo" in row.inner_text() and "1/2" in row.inner_text()
    assert other.locator("[data-testid=new-experiment]").count() == 0
    other.screenshot(path=SCREENSHOTS / "console-list.png", full_page=True)
    context.close()
