"""Wake the engine for an experiment: at most one queued advance per experiment at a time.

The key is dropped when the task starts (before it reads any state), so a wake-up that arrives while it
runs queues the next one and none is lost; its short life means a lost message only delays, never stops.
A broker or cache outage (a Redis restart) makes a wake-up fail, not the step that asked for it, whose work
has committed: the recovery sweep that a worker runs when it reconnects wakes every running experiment.
"""

import contextlib
import logging

from django.core.cache import cache
from django.db import transaction

from apps.core.enqueue import UNREACHABLE, send

log = logging.getLogger(__name__)

ADVANCE_TASK = "apps.experiments.tasks.advance_experiment"
WAKE_TTL_S = 10


def _key(experiment_id: int) -> str:
    return f"experiments:advance-queued:{experiment_id}"


def wake(experiment_id: int) -> bool:
    """Queue an advance now unless one is already queued; True when this call queued it."""
    try:
        if not cache.add(_key(experiment_id), 1, timeout=WAKE_TTL_S):
            return False
        send(ADVANCE_TASK, experiment_id)
    except UNREACHABLE as exc:
        log.warning(
            "Experiment %s not woken: broker or cache unreachable (%s); the recovery sweep will", experiment_id, exc
        )
        woken(experiment_id)  # nothing is queued: the key must not hold back the next wake-up
        return False
    return True


def wake_on_commit(experiment_id: int) -> None:
    transaction.on_commit(lambda: wake(experiment_id))


def woken(experiment_id: int) -> None:
    """The queued advance has started."""
    with contextlib.suppress(*UNREACHABLE):
        cache.delete(_key(experiment_id))
