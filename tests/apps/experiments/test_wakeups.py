"""Stages are woken, not polling: the gateway's recorder signals settled calls after commit, with the
experiments they serve; the receiver queues one advance per experiment at a time."""

import pytest

from apps.experiments import wake
from apps.experiments.models import Round
from apps.llm.services import llm_calls_enqueue
from apps.llm.signals import llm_calls_settled
from apps.training.signals import training_job_finished
from tests.apps.llm.conftest import drain, make_endpoint, make_experiment, teacher_requests

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent(monkeypatch):
    calls = []
    monkeypatch.setattr(wake, "send", lambda name, *args: calls.append((name, *args)))
    return calls


def test_settled_calls_wake_the_experiments_that_asked_for_them(llm_server, sent):
    endpoint = make_endpoint(llm_server)
    first, second, bystander = make_experiment(), make_experiment(), make_experiment()
    heard = []

    def listen(sender, *, experiment_ids, **kwargs):
        heard.append(sorted(experiment_ids))

    llm_calls_settled.connect(listen)
    try:
        requests = teacher_requests(endpoint, 3)
        for experiment in (first, second):
            llm_calls_enqueue(
                endpoint=endpoint,
                requests=requests,
                purpose="teacher",
                experiment_id=experiment.pk,
                stage="answer",
                items=[f"i{n}" for n in range(3)],
                kick=False,
            )
        drain(endpoint)
    finally:
        llm_calls_settled.disconnect(listen)
    assert heard and all(ids == sorted([first.pk, second.pk]) for ids in heard)
    assert bystander.pk not in {pk for ids in heard for pk in ids}
    # The receiver queued one advance for each, however many groups of results were written.
    assert sorted(sent) == sorted([(wake.ADVANCE_TASK, first.pk), (wake.ADVANCE_TASK, second.pk)])


def test_one_queued_advance_per_experiment_until_it_starts(sent):
    assert wake.wake(7) is True
    assert wake.wake(7) is False
    wake.woken(7)  # the task started: the next wake-up queues again
    assert wake.wake(7) is True
    assert sent == [(wake.ADVANCE_TASK, 7), (wake.ADVANCE_TASK, 7)]


def test_a_finished_training_job_wakes_its_experiment(sent):
    experiment = make_experiment()
    round_ = Round.objects.create(experiment=experiment, index=1)
    training_job_finished.send(sender=None, job_id=1, round_id=round_.pk, status="succeeded")
    assert sent == [(wake.ADVANCE_TASK, experiment.pk)]


def test_a_wake_up_the_broker_refuses_fails_quietly_and_holds_back_no_later_one(monkeypatch):
    """A Redis restart makes sending raise; the step that woke the experiment has committed, so the wake-up
    must not fail it (the reconnect sweep wakes it again), nor keep the once-only key that would swallow the
    next wake-up."""
    from kombu.exceptions import OperationalError

    def refuse(name, *args):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(wake, "send", refuse)
    assert wake.wake(41) is False
    calls = []
    monkeypatch.setattr(wake, "send", lambda name, *args: calls.append((name, *args)))
    assert wake.wake(41) is True
    assert calls == [(wake.ADVANCE_TASK, 41)]
