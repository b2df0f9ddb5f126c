"""A Lion round's review gate with review.overlap: 2 against the test server: each task needs two agreeing
reviewers, a disagreement waits for an operator, the last decision wakes the engine; auto-approve records
verdicts and the resolution. review.overlap is validated with its key path."""

import pytest

from apps.core.roles import Role
from apps.experiments import wake
from apps.experiments.config import ConfigError, parse_config
from apps.experiments.models import Experiment, Round, StageRun
from apps.experiments.selectors import gate_decisions, gate_open_count
from apps.experiments.services import experiment_approve_and_train, experiment_create, experiment_start
from apps.experiments.stages.review_gate import AUTO_REVIEWER
from apps.reviews.models import ReviewTask, ReviewVerdict
from apps.reviews.services import review_decide, review_resolve
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
E = Experiment.Status


@pytest.fixture(autouse=True)
def _training_root(tmp_path, settings):
    settings.RETORT_TRAINING_ROOT = tmp_path / "training"


@pytest.fixture
def sent(monkeypatch):
    calls = []
    monkeypatch.setattr(wake, "send", lambda name, *args: calls.append((name, *args)))
    return calls


def _at_verdict_gate(llm_server, *, auto_approve=False):
    config = lion_config(llm_server, seed_dataset(), review={"hard_verdicts": "all", "overlap": 2})
    experiment = experiment_create(config=config)
    experiment_start(experiment_id=experiment.pk)
    experiment = drive(experiment, train=False)
    experiment_approve_and_train(experiment_id=experiment.pk, by=UserFactory(role=Role.OPERATOR))
    if auto_approve:
        experiment_start(experiment_id=experiment.pk, auto_approve=True)
    return drive(experiment), Round.objects.get(experiment=experiment, index=1)


def test_with_overlap_two_a_gate_waits_for_two_agreeing_reviewers(llm_server, sent, django_capture_on_commit_callbacks):
    experiment, round_ = _at_verdict_gate(llm_server)
    assert experiment.status == E.WAITING_REVIEW
    tasks = list(ReviewTask.objects.filter(round=round_, kind="verdict").order_by("pk"))
    assert tasks and {t.required_reviews for t in tasks} == {2}
    alice, bob = UserFactory(role=Role.REVIEWER), UserFactory(role=Role.REVIEWER)
    for task in tasks:
        review_decide(reviewer=alice, task_id=task.pk, decision="accept")
    assert gate_open_count(round_id=round_.pk, kind="verdict") == len(tasks)
    assert drive(experiment).status == E.WAITING_REVIEW
    disputed, *rest = tasks
    assert review_decide(reviewer=bob, task_id=disputed.pk, decision="flip").status == "conflict"
    for task in rest:
        review_decide(reviewer=bob, task_id=task.pk, decision="accept")
    assert gate_open_count(round_id=round_.pk, kind="verdict") == 1
    assert drive(experiment).status == E.WAITING_REVIEW
    sent.clear()
    wake.woken(experiment.pk)
    with django_capture_on_commit_callbacks(execute=True):
        review_resolve(by=UserFactory(role=Role.OPERATOR), task_id=disputed.pk, decision="flip")
    assert sent == [(wake.ADVANCE_TASK, experiment.pk)]  # the engine hears the gate's last decision
    decisions = gate_decisions(round_id=round_.pk, kind="verdict")
    assert decisions[disputed.subject_id].decision == "flip"
    assert {decisions[t.subject_id].decision for t in rest} == {"accept"}
    drive(experiment)
    assert StageRun.objects.get(round=round_, name="gate_verdicts").status == "done"


def test_auto_approve_writes_verdicts_and_the_resolution(llm_server):
    _, round_ = _at_verdict_gate(llm_server, auto_approve=True)
    tasks = ReviewTask.objects.filter(round=round_, kind="verdict")
    assert tasks.exists() and not tasks.exclude(status="done").exists()
    assert set(tasks.values_list("decision", "resolved_by__username")) == {("accept", AUTO_REVIEWER)}
    assert ReviewVerdict.objects.filter(task__in=tasks, reviewer__username=AUTO_REVIEWER).count() == tasks.count()
    assert StageRun.objects.get(round=round_, name="gate_verdicts").status == "done"


@pytest.mark.parametrize(("value", "message"), [(0, "from 1 to 5, got 0"), (6, "got 6"), ("two", 'got "two"')])
def test_review_overlap_is_a_whole_number_from_one_to_five(value, message, llm_server):
    config = lion_config(llm_server, seed_dataset(), review={"overlap": value})
    with pytest.raises(ConfigError) as info:
        parse_config(config)
    assert "review.overlap" in str(info.value) and message in str(info.value)


def test_overlap_one_is_the_default_and_leaves_the_hash_alone(llm_server):
    config = lion_config(llm_server, seed_dataset(), name="same")
    plain = parse_config(config)
    assert parse_config({**config, "review": {**config["review"], "overlap": 1}}).hash == plain.hash
    two = parse_config({**config, "review": {**config["review"], "overlap": 2}})
    assert two.review["overlap"] == 2 and two.hash != plain.hash and parse_config(two.to_dict()) == two
