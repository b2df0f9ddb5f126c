"""Signals from lower apps that change an experiment's state (connected in apps.py)."""

import logging

from apps.experiments.services import ExperimentTransitionError, experiment_hold

log = logging.getLogger(__name__)


def on_hold_requested(sender, *, experiment_id: int, reason: str, **kwargs) -> None:
    """The LLM gateway stopped sending an experiment's calls: pause the experiment with its reason."""
    try:
        experiment_hold(experiment_id=experiment_id, reason=reason)
    except ExperimentTransitionError as exc:
        # An ended experiment stays ended; the gateway's hold keeps its leftover calls unsent.
        log.info("Hold not applied to experiment %s: %s", experiment_id, exc)
