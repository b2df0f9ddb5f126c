"""Review tasks in gates of real rounds, reviewers by role, and what the services announce."""

import itertools

import pytest

from apps.core.roles import Role
from apps.experiments.models import Experiment, Round
from apps.reviews.signals import review_tasks_done
from tests.factories import DatasetFactory, ReviewTaskFactory, UserFactory

_names = itertools.count(1)


def make_round(index: int = 1, experiment: Experiment | None = None) -> Round:
    if experiment is None:
        experiment = Experiment.objects.create(
            name=f"reviews-{next(_names)}", recipe="lion", dataset=DatasetFactory(), status="waiting_review"
        )
    return Round.objects.create(experiment=experiment, index=index)


def reviewer():
    return UserFactory(role=Role.REVIEWER)


def tasks(n: int, **fields):
    return [ReviewTaskFactory(**fields) for _ in range(n)]


@pytest.fixture
def announced():
    """Every review_tasks_done sent during the test: (task_ids, round_ids, kinds)."""
    heard = []

    def listen(sender, *, task_ids, round_ids, kinds, **kwargs):
        heard.append((list(task_ids), list(round_ids), list(kinds)))

    review_tasks_done.connect(listen, dispatch_uid="tests.reviews.announced")
    yield heard
    review_tasks_done.disconnect(dispatch_uid="tests.reviews.announced")


@pytest.fixture
def llm_server():
    from tests.llm_server.server import ServerThread

    with ServerThread() as server:
        yield server
