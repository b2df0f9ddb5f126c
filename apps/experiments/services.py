"""The experiment's own states: hold (pause) and resume, with the status to return to.

Only this module changes `Experiment.status` for a pause or a resume. Each transition takes the row lock
and is checked against a table; anything else raises ExperimentTransitionError. The LLM gateway asks for
holds through a signal (see apps.py) and keeps its own hold rows, which resuming releases.
"""

from django.db import transaction

from apps.core.errors import RetortError
from apps.experiments.models import Experiment
from apps.llm.services import llm_holds_place, llm_holds_release

S = Experiment.Status

# status -> what hold and resume may do from it
HOLDABLE = frozenset({S.DRAFT, S.RUNNING, S.WAITING_REVIEW, S.WAITING_APPROVAL, S.TRAINING})
ENDED = frozenset({S.FINISHED, S.FAILED})


class ExperimentTransitionError(RetortError):
    """A pause or resume that the experiment's state does not allow."""


def _locked(experiment_id: int) -> Experiment:
    experiment = Experiment.objects.select_for_update().filter(pk=experiment_id).first()
    if experiment is None:
        raise ExperimentTransitionError(f"No experiment #{experiment_id}.")
    return experiment


@transaction.atomic
def experiment_hold(*, experiment_id: int, reason: str) -> Experiment:
    """Pause the experiment, remembering the status to return to; a paused one stays paused with the new
    reason. The gateway stops sending its calls (other experiments' calls go on)."""
    experiment = _locked(experiment_id)
    if experiment.status in ENDED:
        raise ExperimentTransitionError(
            f"Experiment {experiment.name} is {experiment.get_status_display()}: an ended experiment is not held."
        )
    if experiment.status in HOLDABLE:
        experiment.resume_status = experiment.status
        experiment.status = S.PAUSED
    elif experiment.status != S.PAUSED:
        raise ExperimentTransitionError(f"Experiment {experiment.name} cannot be held from {experiment.status}.")
    experiment.status_reason = reason[:2000]
    experiment.save(update_fields=["status", "resume_status", "status_reason", "updated_at"])
    # The gateway's own record, so its runner stops even when the pause did not start there.
    llm_holds_place(experiment_ids=[experiment.pk], reason=experiment.status_reason, notify=False)
    return experiment


@transaction.atomic
def experiment_resume(*, experiment_id: int) -> Experiment:
    """Return a paused experiment to the status it was paused from, release the gateway's holds and wake
    the runners that have its calls."""
    experiment = _locked(experiment_id)
    if experiment.status != S.PAUSED:
        raise ExperimentTransitionError(
            f"Experiment {experiment.name} is {experiment.get_status_display()}, not paused: nothing to resume."
        )
    # Paused before the status to return to was remembered: it was running.
    experiment.status = experiment.resume_status or S.RUNNING
    experiment.resume_status = ""
    experiment.status_reason = ""
    experiment.save(update_fields=["status", "resume_status", "status_reason", "updated_at"])
    llm_holds_release(experiment_id=experiment.pk)
    return experiment
