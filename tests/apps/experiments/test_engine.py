"""The state machine: every transition outside the tables raises, legal ones happen once under concurrency."""

import itertools
import threading

import pytest
from django.db import connection, transaction

from apps.experiments import engine
from apps.experiments.engine import IllegalTransition, transition
from apps.experiments.models import Experiment, Round, StageRun
from apps.experiments.services import experiment_cancel, experiment_hold, experiment_resume, experiment_start
from tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db
_names = itertools.count()


def _experiment(status=Experiment.Status.DRAFT) -> Experiment:
    return Experiment.objects.create(
        name=f"e-{next(_names)}", recipe="lion", dataset=DatasetFactory(), status=status, config={"params": {}}
    )


def _round(status=Round.Status.PENDING) -> Round:
    return Round.objects.create(experiment=_experiment(Experiment.Status.RUNNING), index=1, status=status)


def _run(status=StageRun.Status.PENDING) -> StageRun:
    return StageRun.objects.create(
        round=_round(Round.Status.RUNNING), position=0, name="s", kind="answer", status=status
    )


MAKERS = {Experiment: _experiment, Round: _round, StageRun: _run}
PAIRS = [
    (model, current, to)
    for model, table in engine.TABLES.items()
    for current in model.Status.values
    for to in model.Status.values
]


@pytest.mark.parametrize(
    ("model", "current", "to"),
    [p for p in PAIRS if p[2] not in engine.TABLES[p[0]][p[1]]],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_every_illegal_transition_raises_and_changes_nothing(model, current, to):
    row = MAKERS[model](current)
    with pytest.raises(IllegalTransition, match="not a legal transition"), transaction.atomic():
        transition(row, to)
    row.refresh_from_db()
    assert row.status == current


@pytest.mark.parametrize(
    ("model", "current", "to"),
    [p for p in PAIRS if p[2] in engine.TABLES[p[0]][p[1]]],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_every_legal_transition_is_applied(model, current, to):
    row = MAKERS[model](current)
    with transaction.atomic():
        transition(row, to)
    row.refresh_from_db()
    assert row.status == to


def test_ended_states_are_final():
    for model, table in engine.TABLES.items():
        for status in ("finished", "failed", "cancelled", "done"):
            if status in table:
                assert table[status] == set(), (model, status)


def test_pause_resume_and_cancel_go_through_the_table():
    experiment = _experiment(Experiment.Status.DRAFT)
    experiment_start(experiment_id=experiment.pk)
    round_ = Round.objects.create(experiment=experiment, index=1, status=Round.Status.RUNNING)
    run = StageRun.objects.create(round=round_, position=0, name="a", kind="answer", status=StageRun.Status.RUNNING)
    experiment_hold(experiment_id=experiment.pk, reason="Paused by an operator.")
    run.refresh_from_db()
    assert run.status == StageRun.Status.PAUSED
    assert engine.advance(experiment.pk) is False  # a paused experiment does no work
    experiment_resume(experiment_id=experiment.pk)
    run.refresh_from_db()
    experiment.refresh_from_db()
    assert (experiment.status, run.status) == ("running", "running")
    experiment_cancel(experiment_id=experiment.pk)
    run.refresh_from_db()
    round_.refresh_from_db()
    experiment.refresh_from_db()
    assert (experiment.status, round_.status, run.status) == ("cancelled", "cancelled", "cancelled")
    with pytest.raises(IllegalTransition):
        experiment_resume(experiment_id=experiment.pk)
    with pytest.raises(IllegalTransition):
        experiment_cancel(experiment_id=experiment.pk)


needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks need PostgreSQL (SQLite serialises every writer)"
)


def _race(n: int, work) -> list:
    """Run `work` in n threads at once; each result or the exception it raised."""
    barrier, results = threading.Barrier(n), []

    def body():
        try:
            barrier.wait()
            results.append(work())
        except Exception as exc:  # noqa: BLE001 - the test looks at what each thread got
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=body) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_legal_transition_raced_by_threads_happens_once():
    round_ = _round(Round.Status.PENDING)

    def start():
        with transaction.atomic():
            return transition(Round.objects.get(pk=round_.pk), Round.Status.RUNNING).status

    results = _race(6, start)
    assert results.count("running") == 1
    assert sum(isinstance(r, IllegalTransition) for r in results) == 5


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_advance_raced_by_threads_takes_each_step_once():
    experiment = _experiment(Experiment.Status.RUNNING)
    Round.objects.create(experiment=experiment, index=1)
    # One round with no stages and rounds=1: pending -> running, then finished, then the experiment ends.
    results = _race(6, lambda: engine.advance(experiment.pk))
    assert not [r for r in results if isinstance(r, Exception)]
    experiment.refresh_from_db()
    assert experiment.status in ("running", "finished")
    while engine.advance(experiment.pk):
        pass
    experiment.refresh_from_db()
    assert experiment.status == "finished"
    assert Round.objects.get(experiment=experiment).status == "finished"


def test_a_stage_that_cannot_start_fails_its_round_and_experiment_with_the_reason():
    experiment = _experiment(Experiment.Status.RUNNING)
    round_ = Round.objects.create(experiment=experiment, index=1, status=Round.Status.RUNNING)
    # No judgment is hard or easy, so generation has no seeds.
    run = StageRun.objects.create(round=round_, position=0, name="generate", kind="generate")
    assert engine.advance(experiment.pk) is False
    run.refresh_from_db()
    round_.refresh_from_db()
    experiment.refresh_from_db()
    assert (run.status, round_.status, experiment.status) == ("failed", "failed", "failed")
    assert "nothing to generate from" in run.error
    assert experiment.status_reason.startswith("Stage 'generate' of round 1 failed: No instruction was judged")
    assert engine.advance(experiment.pk) is False  # an ended experiment does nothing
