"""Experiments for the console's pages, moved by the real engine in this process against the local LLM
test server (see tests/apps/experiments/conftest.py): fresh, waiting for approval, waiting for review."""

import pytest

from apps.experiments.models import Experiment
from apps.experiments.services import experiment_approve_and_train, experiment_create, experiment_start
from tests.apps.experiments.conftest import _fast_retries, _training_root, drive, lion_config, llm_server, seed_dataset

__all__ = ["_fast_retries", "_training_root", "llm_server"]


def lion(server, **overrides) -> Experiment:
    return experiment_create(config=lion_config(server, seed_dataset(), **overrides))


@pytest.fixture
def draft(llm_server) -> Experiment:
    return lion(llm_server)


@pytest.fixture
def waiting_approval(llm_server) -> Experiment:
    """Round 1 of a Lion experiment after the teacher answered its train pool: the train stage waits."""
    experiment = lion(llm_server)
    experiment_start(experiment_id=experiment.pk)
    experiment = drive(experiment, train=False)
    assert experiment.status == Experiment.Status.WAITING_APPROVAL, experiment.status_reason
    return experiment


@pytest.fixture
def waiting_review(waiting_approval) -> Experiment:
    """The same experiment approved and trained (the job reported done), held at its verdicts' gate."""
    experiment_approve_and_train(experiment_id=waiting_approval.pk)
    experiment = drive(waiting_approval, train=True)
    assert experiment.status == Experiment.Status.WAITING_REVIEW, experiment.status_reason
    return experiment
