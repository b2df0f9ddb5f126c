"""Signals from lower apps that change an experiment's state or wake its engine (connected in apps.py)."""

import logging

from apps.experiments.services import ExperimentTransitionError, experiment_hold
from apps.experiments.wake import wake

log = logging.getLogger(__name__)


def on_hold_requested(sender, *, experiment_id: int, reason: str, **kwargs) -> None:
    """The LLM gateway stopped sending an experiment's calls: pause the experiment with its reason."""
    try:
        experiment_hold(experiment_id=experiment_id, reason=reason)
    except ExperimentTransitionError as exc:
        # An ended experiment stays ended; the gateway's hold keeps its leftover calls unsent.
        log.info("Hold not applied to experiment %s: %s", experiment_id, exc)


def on_calls_settled(sender, *, experiment_ids, **kwargs) -> None:
    """Calls that experiments asked for have settled: their stages may collect (sent after commit)."""
    for experiment_id in sorted(set(experiment_ids)):
        wake(experiment_id)


def on_job_finished(sender, *, round_id: int, **kwargs) -> None:
    """A training or generation job of a round ended: its train or answer stage moves on."""
    from apps.experiments.models import Round

    experiment_id = Round.objects.filter(pk=round_id).values_list("experiment_id", flat=True).first()
    if experiment_id is not None:
        wake(experiment_id)


def on_review_tasks_done(sender, *, round_ids, **kwargs) -> None:
    """Review tasks of these rounds were decided (sent after commit): their gates may open."""
    from apps.experiments.models import Round

    ids = Round.objects.filter(pk__in=list(round_ids)).values_list("experiment_id", flat=True).distinct()
    for experiment_id in sorted(set(ids)):
        wake(experiment_id)
