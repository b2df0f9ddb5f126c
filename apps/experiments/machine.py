"""The state machine's tables and the one way to change a status: `transition`, under the row lock.

Everything the stage kinds, services and the engine share lives here, below all of them, so none of them
imports the engine (which imports the kinds).
"""

import zlib

import numpy as np
from django.utils import timezone

from apps.core.errors import RetortError
from apps.experiments.models import Experiment, Round, StageRun

E, R, S = Experiment.Status, Round.Status, StageRun.Status

EXPERIMENT_TRANSITIONS = {
    E.DRAFT: {E.RUNNING, E.PAUSED, E.CANCELLED},
    E.RUNNING: {E.WAITING_REVIEW, E.WAITING_APPROVAL, E.TRAINING, E.PAUSED, E.FINISHED, E.FAILED, E.CANCELLED},
    E.WAITING_REVIEW: {E.RUNNING, E.PAUSED, E.FAILED, E.CANCELLED},
    E.WAITING_APPROVAL: {E.RUNNING, E.TRAINING, E.PAUSED, E.FAILED, E.CANCELLED},
    E.TRAINING: {E.RUNNING, E.PAUSED, E.FAILED, E.CANCELLED},
    # Resuming returns to the status the experiment was paused from.
    E.PAUSED: {E.DRAFT, E.RUNNING, E.WAITING_REVIEW, E.WAITING_APPROVAL, E.TRAINING, E.CANCELLED},
    E.FINISHED: set(),
    E.FAILED: set(),
    E.CANCELLED: set(),
}
ROUND_TRANSITIONS = {
    R.PENDING: {R.RUNNING, R.CANCELLED},
    R.RUNNING: {R.WAITING_REVIEW, R.WAITING_APPROVAL, R.TRAINING, R.EVALUATING, R.FINISHED, R.FAILED, R.CANCELLED},
    R.WAITING_REVIEW: {R.RUNNING, R.FAILED, R.CANCELLED},
    R.WAITING_APPROVAL: {R.RUNNING, R.TRAINING, R.FAILED, R.CANCELLED},
    R.TRAINING: {R.RUNNING, R.FAILED, R.CANCELLED},
    R.EVALUATING: {R.RUNNING, R.FINISHED, R.FAILED, R.CANCELLED},
    R.FINISHED: set(),
    R.FAILED: set(),
    R.CANCELLED: set(),
}
STAGE_TRANSITIONS = {
    S.PENDING: {S.RUNNING, S.FAILED, S.CANCELLED},  # failed: it could not start (nothing to work on)
    S.RUNNING: {S.WAITING, S.DONE, S.FAILED, S.PAUSED, S.CANCELLED},
    S.WAITING: {S.RUNNING, S.DONE, S.FAILED, S.PAUSED, S.CANCELLED},
    S.PAUSED: {S.RUNNING, S.WAITING, S.CANCELLED},
    S.DONE: set(),
    S.FAILED: set(),
    S.CANCELLED: set(),
}
TABLES = {Experiment: EXPERIMENT_TRANSITIONS, Round: ROUND_TRANSITIONS, StageRun: STAGE_TRANSITIONS}

# Experiment states in which the engine works; in the others `advance` does nothing.
ACTIVE = frozenset({E.RUNNING, E.WAITING_REVIEW, E.WAITING_APPROVAL, E.TRAINING})
ENDED = frozenset({E.FINISHED, E.FAILED, E.CANCELLED})
ROUND_OPEN = (R.PENDING, R.RUNNING, R.WAITING_REVIEW, R.WAITING_APPROVAL, R.TRAINING, R.EVALUATING)
STAGE_OPEN = (S.PENDING, S.RUNNING, S.WAITING, S.PAUSED)
# What a waiting stage makes of its round and experiment.
WAIT_STATUS = {
    "review": (R.WAITING_REVIEW, E.WAITING_REVIEW),
    "approval": (R.WAITING_APPROVAL, E.WAITING_APPROVAL),
    "training": (R.TRAINING, E.TRAINING),
}


class IllegalTransition(RetortError):
    """A status change the state machine does not allow."""


class StageError(RetortError):
    """A stage cannot go on (a training job failed, nothing to work on…): the round and experiment fail."""


def check(model, current: str, to: str, label: str = "") -> None:
    if to not in TABLES[model].get(current, set()):
        name = model._meta.verbose_name
        raise IllegalTransition(f"{name} {label}: {current} → {to} is not a legal transition.".replace("  ", " "))


def transition(obj, to: str, *, reason: str | None = None, locked: bool = False):
    """Move `obj` (an Experiment, Round or StageRun) to status `to` under its row lock, or raise
    IllegalTransition. Returns the fresh, saved row. Call it inside a transaction."""
    model = type(obj)
    row = obj if locked else model.objects.select_for_update().get(pk=obj.pk)
    check(model, row.status, to, _label(row))
    row.status = to
    fields = ["status"]
    now = timezone.now()
    if model is Experiment:
        if reason is not None:
            row.status_reason = reason[:2000]
            fields.append("status_reason")
        fields.append("updated_at")
    elif model is Round:
        if to in (R.FINISHED, R.FAILED, R.CANCELLED):
            row.finished_at = now
            fields.append("finished_at")
        fields.append("updated_at")
    else:
        if to == S.RUNNING and row.started_at is None:
            row.started_at = now
            fields.append("started_at")
        if to in (S.DONE, S.FAILED, S.CANCELLED):
            row.finished_at = now
            fields.append("finished_at")
        if reason is not None:
            row.error = reason[:4000]
            fields.append("error")
    row.save(update_fields=fields)
    if obj is not row:
        obj.status = row.status
    return row


def _label(row) -> str:
    if isinstance(row, Experiment):
        return row.name
    if isinstance(row, Round):
        return f"#{row.pk} (round {row.index})"
    return f"{row.name} #{row.pk}"


def rng_for(seed: int, round_index: int, stage: str) -> np.random.Generator:
    """The one source of randomness of a stage: seeded by the config's seed, the round and the stage."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(round_index), zlib.crc32(stage.encode())])


# --- reads under lock -----------------------------------------------------------------------------------
def current_round(experiment: Experiment, *, lock: bool = False) -> Round | None:
    qs = Round.objects.filter(experiment=experiment, status__in=ROUND_OPEN).order_by("index")
    return (qs.select_for_update() if lock else qs).first()


def current_stage(round_: Round, *, lock: bool = False) -> StageRun | None:
    qs = StageRun.objects.filter(round=round_, status__in=STAGE_OPEN).order_by("position")
    return (qs.select_for_update() if lock else qs).first()


def set_experiment_status(experiment: Experiment, to: str, reason: str | None = None) -> None:
    if experiment.status != to:
        transition(experiment, to, reason=reason, locked=True)


def set_round_status(round_: Round, to: str) -> None:
    if round_.status != to:
        transition(round_, to, locked=True)
