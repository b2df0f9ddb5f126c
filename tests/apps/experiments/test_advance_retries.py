"""advance_experiment's retries after a step failure are bounded by the stage run's attempts, not by Celery's
retry count: connection-loss retries (apps/core/connection_lost.py) add to that count, and a step failure
that came after three of them used to push it past the task's max_retries, so retry() re-raised and the
experiment's advance message was gone, with the experiment left running and nothing queued."""

import pytest

from apps.experiments import tasks
from apps.experiments.models import Experiment, StageRun
from apps.experiments.services import experiment_create, experiment_start
from tests.apps.experiments.conftest import lion_config, seed_dataset

pytestmark = pytest.mark.django_db


def _broken_step(experiment_id):
    raise RuntimeError("the step broke")


@pytest.mark.parametrize("connection_retries", [0, tasks.MAX_ATTEMPTS, tasks.MAX_ATTEMPTS + 4])
def test_a_step_failure_after_connection_retries_is_still_retried_until_it_fails_the_experiment(
    llm_server, monkeypatch, connection_retries
):
    experiment = experiment_create(config=lion_config(llm_server, seed_dataset(2)))
    experiment_start(experiment_id=experiment.pk)
    while not StageRun.objects.filter(round__experiment=experiment, status=StageRun.Status.RUNNING).exists():
        assert tasks.engine.advance(experiment.pk), "the round never started a stage"
    monkeypatch.setattr(tasks.engine, "advance", _broken_step)
    # As a worker would run it after that many connection-loss retries (eagerly: each retry runs at once).
    result = tasks.advance_experiment.apply(args=(experiment.pk,), retries=connection_retries, throw=False)
    assert result.successful(), result.traceback
    assert result.result["failed"] == "the step broke"
    run = StageRun.objects.filter(round__experiment=experiment).exclude(attempts=0).get()
    assert run.attempts == tasks.MAX_ATTEMPTS
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FAILED
    assert "RuntimeError: the step broke" in experiment.status_reason
