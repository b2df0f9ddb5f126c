"""The experiment engine: advancing an experiment one bounded unit of work at a time.

Every status change goes through `transition` (apps.experiments.machine), which locks the row and checks the
tables; anything else raises IllegalTransition, never a silent no-op. `advance(experiment_id)` does one
bounded unit of work (one batch, one collect, one finalize or one state change) under row locks taken in a
fixed order (experiment, round, stage run), so two workers advancing one experiment take turns and never do
a step twice. Tasks call it in a loop and re-enqueue themselves; the gateway and the training app wake them.
"""

import logging

from django.db import transaction

from apps.experiments.machine import (  # noqa: F401 - the engine's vocabulary, re-exported for callers
    ACTIVE,
    ENDED,
    EXPERIMENT_TRANSITIONS,
    ROUND_OPEN,
    ROUND_TRANSITIONS,
    STAGE_OPEN,
    STAGE_TRANSITIONS,
    TABLES,
    WAIT_STATUS,
    E,
    IllegalTransition,
    R,
    S,
    StageError,
    check,
    current_round,
    current_stage,
    rng_for,
    set_experiment_status,
    set_round_status,
    transition,
)
from apps.experiments.models import Experiment, Round, StageRun
from apps.experiments.recipes import round_create
from apps.experiments.stages import Context, kind_for

log = logging.getLogger(__name__)


# --- advancing ------------------------------------------------------------------------------------------
def advance(experiment_id: int) -> bool:
    """One bounded unit of work for the experiment; True when more can be done right away."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().filter(pk=experiment_id).first()
        if experiment is None or experiment.status not in ACTIVE:
            return False
        round_ = current_round(experiment, lock=True)
        if round_ is None:
            set_experiment_status(experiment, E.FINISHED, reason="")
            return False
        if round_.status == R.PENDING:
            transition(round_, R.RUNNING, locked=True)
            return True
        run = current_stage(round_, lock=True)
        if run is None:
            return _finish_round(experiment, round_)
        if run.status == S.PAUSED:
            return False  # resumed by experiment_resume
        kind = kind_for(run.kind)
        ctx = Context(experiment, round_, run)
        try:
            with transaction.atomic():  # a failing step leaves no half-written rows behind
                if run.status == S.PENDING:
                    transition(run, S.RUNNING, locked=True)
                    kind.start(ctx)
                    run.save()
                    return True
                outcome = kind.step(ctx)
                run.save()
        except StageError as exc:
            _fail(experiment, round_, run, str(exc))
            return False
        if outcome.done:
            if run.status == S.WAITING:
                set_round_status(round_, R.RUNNING)
                set_experiment_status(experiment, E.RUNNING)
            transition(run, S.DONE, locked=True)
            return True
        if outcome.wait:
            round_status, experiment_status = WAIT_STATUS[outcome.wait]
            if run.status != S.WAITING:
                transition(run, S.WAITING, locked=True)
            if round_.status != round_status:
                set_round_status(round_, R.RUNNING)
                set_round_status(round_, round_status)
            if experiment.status != experiment_status:
                set_experiment_status(experiment, E.RUNNING)
                set_experiment_status(experiment, experiment_status)
            return outcome.more
        return outcome.more


def _finish_round(experiment: Experiment, round_: Round) -> bool:
    """Every stage of the round is done: close it, then open the next round or finish the experiment."""
    if round_.status != R.RUNNING:
        set_round_status(round_, R.RUNNING)
    transition(round_, R.FINISHED, locked=True)
    rounds = int(experiment.config.get("params", {}).get("rounds", 1))
    if round_.index < rounds:
        round_create(experiment=experiment, index=round_.index + 1)
        return True
    set_experiment_status(experiment, E.RUNNING)
    set_experiment_status(experiment, E.FINISHED, reason="")
    return False


def _fail(experiment: Experiment, round_: Round, run: StageRun, reason: str) -> None:
    log.warning("Experiment %s failed in stage %s: %s", experiment.name, run.name, reason)
    run.refresh_from_db()
    transition(run, S.FAILED, reason=reason, locked=True)
    round_.refresh_from_db()
    transition(round_, R.FAILED, locked=True)
    experiment.refresh_from_db()
    transition(experiment, E.FAILED, reason=f"Stage '{run.name}' of round {round_.index} failed: {reason}", locked=True)


def fail_experiment(*, experiment_id: int, reason: str) -> None:
    """A step kept crashing (the task gave up): the experiment, its round and stage fail with the reason."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment_id)
        if experiment.status in ENDED:
            return
        round_ = current_round(experiment, lock=True)
        run = current_stage(round_, lock=True) if round_ else None
        if run is not None and round_ is not None:
            _fail(experiment, round_, run, reason)
        elif experiment.status in (E.RUNNING, E.WAITING_REVIEW, E.WAITING_APPROVAL, E.TRAINING):
            transition(experiment, E.FAILED, reason=reason, locked=True)
