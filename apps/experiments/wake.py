"""Wake the engine for an experiment: at most one queued advance per experiment at a time.

The key is dropped when the task starts (before it reads any state), so a wake-up that arrives while it
runs queues the next one and none is lost; its short life means a lost message only delays, never stops.
"""

from django.core.cache import cache
from django.db import transaction

from apps.core.enqueue import send

ADVANCE_TASK = "apps.experiments.tasks.advance_experiment"
WAKE_TTL_S = 10


def _key(experiment_id: int) -> str:
    return f"experiments:advance-queued:{experiment_id}"


def wake(experiment_id: int) -> bool:
    """Queue an advance now unless one is already queued; True when this call queued it."""
    if cache.add(_key(experiment_id), 1, timeout=WAKE_TTL_S):
        send(ADVANCE_TASK, experiment_id)
        return True
    return False


def wake_on_commit(experiment_id: int) -> None:
    transaction.on_commit(lambda: wake(experiment_id))


def woken(experiment_id: int) -> None:
    """The queued advance has started."""
    cache.delete(_key(experiment_id))
