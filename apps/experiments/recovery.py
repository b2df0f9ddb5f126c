"""Experiments a dead worker left behind are woken again.

An advance task killed with its worker is gone (the file-system broker loses it; Redis hands it back only
after its visibility timeout), and a stage that queues no calls (discriminate, pools, a gate, the novelty
collect) has nothing else to wake it. Advancing is safe to repeat (row locks, one bounded step at a time),
so the recoverer, run when a worker starts and every minute (apps.core.recovery), queues one advance for
each experiment that is running or training.
"""

from apps.experiments.machine import E
from apps.experiments.models import Experiment
from apps.experiments.wake import wake, woken


def experiment_recover_stale(*, stale_after_s: float) -> list[int]:
    """Queue an advance for every running or training experiment; returns their ids."""
    ids = list(
        Experiment.objects.filter(status__in=[E.RUNNING, E.TRAINING]).order_by("pk").values_list("pk", flat=True)
    )
    for experiment_id in ids:
        woken(experiment_id)  # a dead worker's queued advance may still hold the once-only key
        wake(experiment_id)
    return ids
