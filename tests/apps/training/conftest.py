"""Rounds with a frozen snapshot, a stand-in trainer, and the tasks the training services send."""

import json

import pytest
from django.db import transaction

from apps.core import enqueue
from apps.experiments.models import Experiment, Round, Snapshot
from apps.training import lifecycle, services
from tests.factories import DatasetFactory

FAKE = "tests.apps.training.fake_trainer"


@pytest.fixture
def fake_trainer(settings, tmp_path):
    """The gpu task runs the stand-in trainer, fast beats, a short cancel grace, jobs under tmp_path."""
    settings.RETORT_TRAINER_MODULE = FAKE
    settings.RETORT_GENERATOR_MODULE = FAKE
    settings.RETORT_TRAINING_ROOT = tmp_path / "training"
    settings.RETORT_TRAINING_HEARTBEAT_S = 0.1
    settings.RETORT_TRAINING_CANCEL_GRACE_S = 2.0
    return settings


_rounds = iter(range(1, 10**6))


def make_round(tmp_path, n_items: int = 3):
    """A round whose snapshot is frozen, and the snapshot's training data as a JSONL file."""
    n = next(_rounds)
    experiment = Experiment.objects.create(name=f"exp-{n}", recipe="lion", dataset=DatasetFactory())
    round_ = Round.objects.create(experiment=experiment, index=1)
    snapshot = Snapshot.objects.create(round=round_, hash=f"{n:064x}", size=n_items)
    data = tmp_path / f"snapshot-{n}.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"q{i}", "target": f"a{i}"}) + "\n" for i in range(n_items)))
    return round_, snapshot, str(data)


@pytest.fixture
def training_round(tmp_path):
    return make_round(tmp_path)


@pytest.fixture
def sent(monkeypatch):
    """The task messages the training app sends, as (task name, job id), recorded instead of queued (the
    on-commit ones only when their transaction commits, as for real)."""
    messages = []

    def now(name, model, job_id):
        messages.append((name, job_id))
        return True

    def on_commit(name, model, job_id):
        transaction.on_commit(lambda: messages.append((name, job_id)))

    for module in (services, lifecycle):
        monkeypatch.setattr(module, "send_job_on_commit", on_commit)
    monkeypatch.setattr(enqueue, "send_job", now)  # the sweep's re-sends
    return messages


def refuse_first_calls(monkeypatch, module, names, armed=lambda: True) -> list[str]:
    """Make each named function of `module` raise a dropped-connection error on its first call once `armed()`
    holds, as PostgreSQL restarting would; returns the names refused, in order."""
    from django.db import OperationalError

    refused = []

    def wrap(function):
        def write(*args, **kwargs):
            if armed() and function.__name__ not in refused:
                refused.append(function.__name__)
                raise OperationalError("terminating connection due to administrator command")
            return function(*args, **kwargs)

        return write

    for name in names:
        monkeypatch.setattr(module, name, wrap(getattr(module, name)))
    return refused
