"""The experiments app owns its states: hold remembers the status to return to, resume returns to it and
releases the gateway's holds, illegal transitions raise; the gateway asks through a signal."""

import pytest

from apps.experiments.models import Experiment
from apps.experiments.services import ExperimentTransitionError, experiment_hold, experiment_resume
from apps.llm.models import LLMHold
from apps.llm.services import llm_holds_place
from tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db
S = Experiment.Status


def _experiment(status=S.RUNNING, name="e") -> Experiment:
    return Experiment.objects.create(name=name, recipe="lion", dataset=DatasetFactory(), status=status)


def test_hold_remembers_the_status_and_resume_returns_to_it():
    experiment = _experiment(S.WAITING_REVIEW)
    experiment_hold(experiment_id=experiment.pk, reason="Budget reached.")
    experiment.refresh_from_db()
    assert (experiment.status, experiment.resume_status, experiment.status_reason) == (
        S.PAUSED,
        S.WAITING_REVIEW,
        "Budget reached.",
    )
    assert LLMHold.objects.get(released_at=None).experiment_id == experiment.pk

    # Held again while paused: stays paused, keeps where to return, takes the new reason.
    experiment_hold(experiment_id=experiment.pk, reason="Endpoint answered HTTP 401.")
    experiment.refresh_from_db()
    assert (experiment.status, experiment.resume_status) == (S.PAUSED, S.WAITING_REVIEW)
    assert experiment.status_reason == "Endpoint answered HTTP 401."
    assert LLMHold.objects.filter(released_at=None).count() == 1

    experiment_resume(experiment_id=experiment.pk)
    experiment.refresh_from_db()
    assert (experiment.status, experiment.resume_status, experiment.status_reason) == (S.WAITING_REVIEW, "", "")
    assert not LLMHold.objects.filter(released_at=None).exists()


@pytest.mark.parametrize("status", [S.FINISHED, S.FAILED])
def test_an_ended_experiment_is_not_held(status):
    experiment = _experiment(status)
    with pytest.raises(ExperimentTransitionError, match="not held"):
        experiment_hold(experiment_id=experiment.pk, reason="x")
    experiment.refresh_from_db()
    assert experiment.status == status and not LLMHold.objects.exists()


def test_only_a_paused_experiment_resumes():
    experiment = _experiment(S.RUNNING)
    with pytest.raises(ExperimentTransitionError, match="not paused"):
        experiment_resume(experiment_id=experiment.pk)
    with pytest.raises(ExperimentTransitionError, match="No experiment"):
        experiment_hold(experiment_id=experiment.pk + 1000, reason="x")


def test_the_gateways_hold_pauses_the_experiment_through_the_signal():
    running, finished = _experiment(S.TRAINING, "a"), _experiment(S.FINISHED, "b")
    llm_holds_place(experiment_ids=[running.pk, finished.pk], reason="Paused stage 'answer'. Budget reached.")
    running.refresh_from_db()
    finished.refresh_from_db()
    assert (running.status, running.resume_status) == (S.PAUSED, S.TRAINING)
    assert running.status_reason == "Paused stage 'answer'. Budget reached."
    assert finished.status == S.FINISHED  # ended stays ended; the gateway's hold keeps its calls unsent
    assert set(LLMHold.objects.values_list("experiment_id", flat=True)) == {running.pk, finished.pk}
