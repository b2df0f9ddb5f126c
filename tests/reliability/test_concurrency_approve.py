"""Approve-and-train pressed at the same moment by two operators in their browsers (the console's approve
form; each operator in two tabs, so two sessions each) and by a script through the API twice: one
training job for the round, one message to the gpu queue, and every press told of that same job."""

import re

import pytest
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.core.roles import Role
from apps.experiments.models import Experiment, Snapshot
from apps.experiments.services import experiment_create, experiment_start
from apps.training.lifecycle import RUN_TRAINING_TASK
from apps.training.models import TrainingJob
from tests.apps.experiments.conftest import _training_root, drive, lion_config, seed_dataset  # noqa: F401
from tests.apps.reviews.test_claiming import _in_threads
from tests.apps.training.conftest import sent  # noqa: F401 - the messages the training app sends
from tests.factories import UserFactory
from tests.llm_server.server import ServerThread

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the race is between row locks; SQLite serialises writers, so the presses cannot overlap",
    ),
]
PRESSES = 2  # tabs of each operator, and API requests


def _waiting_experiment() -> Experiment:
    with ServerThread() as server:
        config = lion_config(server, seed_dataset(4), params={"rounds": 1, "batch_size": 4})
        experiment = experiment_create(config=config)
        experiment_start(experiment_id=experiment.pk)
        experiment = drive(experiment, train=False)
    assert experiment.status == Experiment.Status.WAITING_APPROVAL, experiment.status_reason
    return experiment


def _browser(pk: int, operator):
    client = Client()  # a tab of its own: a session of its own
    client.force_login(operator)

    def press() -> int:
        response = client.post(f"/experiments/{pk}/approve/")
        assert response.status_code == 302, response.status_code
        page = client.get(response["Location"]).content.decode()
        found = re.search(r"Approved: training job #(\d+) is queued", page)
        assert found, re.findall(r'class="[^"]*message[^"]*"[^>]*>([^<]*)', page)
        return int(found.group(1))

    return press


def _api(pk: int, token: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    def press() -> int:
        response = client.post(f"/api/v1/experiments/{pk}/approve-and-train/")
        assert response.status_code == 202, (response.status_code, response.content)
        return response.json()["id"]

    return press


def test_approve_pressed_at_once_in_two_sessions_and_the_api_queues_one_job(sent):  # noqa: F811
    experiment = _waiting_experiment()
    alice, bob = UserFactory(role=Role.OPERATOR), UserFactory(role=Role.OPERATOR)
    token = Token.objects.create(user=UserFactory(role=Role.OPERATOR)).key
    presses = [
        *(_browser(experiment.pk, alice) for _ in range(PRESSES)),
        *(_browser(experiment.pk, bob) for _ in range(PRESSES)),
        *(_api(experiment.pk, token) for _ in range(PRESSES)),
    ]
    got = _in_threads(len(presses), lambda i: presses[i]())
    assert not [g for g in got if isinstance(g, BaseException)], got
    [job] = TrainingJob.objects.filter(round__experiment=experiment)
    assert got == [job.pk] * len(presses)
    assert Snapshot.objects.filter(round__experiment=experiment).count() == 1
    assert sent == [(RUN_TRAINING_TASK, job.pk)]
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.TRAINING
