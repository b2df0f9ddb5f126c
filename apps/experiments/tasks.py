"""Celery tasks of the experiments app (queue `default`). Thin: take an id, let the engine work, re-enqueue."""

import logging
import time

from celery import shared_task
from django.db import transaction

from apps.core.connection_lost import CONNECTION_LOST, retry_on_a_fresh_connection
from apps.experiments import engine
from apps.experiments.exports.services import export_run
from apps.experiments.models import StageRun
from apps.experiments.wake import wake, woken

log = logging.getLogger(__name__)

SLICE_S = 20.0  # one task works this long, then queues its continuation so others get the worker
MAX_ATTEMPTS = 3  # a step that keeps crashing fails the experiment with its error


@shared_task(bind=True, acks_late=True, soft_time_limit=300, time_limit=360, max_retries=MAX_ATTEMPTS)
def advance_experiment(self, experiment_id: int) -> dict:
    woken(experiment_id)
    steps, deadline = 0, time.monotonic() + SLICE_S
    try:
        while time.monotonic() < deadline:
            steps += 1
            if not engine.advance(experiment_id):
                return {"steps": steps, "more": False}
    except CONNECTION_LOST as exc:
        # The database dropped the connection, not the step: its transaction rolled back, and counting it
        # as the step's failure would fail the experiment after three drops. Retried until it is back.
        log.warning("Experiment %s: lost the database connection (%s); retrying", experiment_id, exc)
        raise retry_on_a_fresh_connection(self, exc) from exc
    except Exception as exc:
        attempts = _count_attempt(experiment_id, exc)
        if attempts >= MAX_ATTEMPTS:
            log.exception("Experiment %s: a step failed %d times; failing it", experiment_id, attempts)
            engine.fail_experiment(experiment_id=experiment_id, reason=f"{type(exc).__name__}: {exc}")
            return {"steps": steps, "failed": str(exc)}
        # The stage run's attempts bound these retries, not Celery's count, which the connection-loss retries
        # above also raise: past the task's max_retries, retry() would re-raise and the advance be lost.
        raise self.retry(exc=exc, countdown=2**attempts, max_retries=self.request.retries + 1) from exc
    wake(experiment_id)  # more to do: continue in a fresh task
    return {"steps": steps, "more": True}


def _count_attempt(experiment_id: int, exc: Exception) -> int:
    with transaction.atomic():
        run = (
            StageRun.objects.select_for_update()
            .filter(round__experiment_id=experiment_id, status__in=[StageRun.Status.RUNNING, StageRun.Status.WAITING])
            .order_by("round__index", "position")
            .first()
        )
        if run is None:
            return MAX_ATTEMPTS
        run.attempts += 1
        run.error = f"{type(exc).__name__}: {exc}"[:4000]
        run.save(update_fields=["attempts", "error"])
        return run.attempts


@shared_task(soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def run_export_job(job_id: int) -> None:
    """Write one export job's files. A re-delivered task finds the job done, or running with a live
    worker, and does nothing; a dead worker's job is taken over once it has been silent long enough."""
    export_run(job_id=job_id)
