"""Gpu-queue tasks. Start the worker as `celery -A config worker -Q gpu --pool solo --concurrency 1`.

All are safe to deliver twice: the job claims itself with a conditional update, so a redelivered message
(a Redis visibility timeout, a worker lost with the message unacknowledged) or a second worker finds it
running with a live heartbeat and returns at once.

acks_late + reject_on_worker_lost: a message is acknowledged only when its task returns, so a worker killed
mid-job gives the message back instead of losing it (and the recoverer re-queues the job from the database
in any case). Training has no time limit: a run takes as long as its data and GPU make it — hours or days —
and a limit would kill it at an arbitrary step; cancel is the way to stop one, and a dead trainer shows as a
stale heartbeat. Generation is bounded by its prompt count, and a merge by one pass over the weights, so
they get generous limits instead.
"""

from celery import shared_task

from apps.training.running import generation_job_run, merge_job_run, training_job_run


@shared_task(acks_late=True, reject_on_worker_lost=True, time_limit=None, soft_time_limit=None)
def run_training_job(job_id: int) -> None:
    training_job_run(job_id=job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=12 * 3600, time_limit=12 * 3600 + 600)
def run_generation_job(job_id: int) -> None:
    generation_job_run(job_id=job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=4 * 3600, time_limit=4 * 3600 + 600)
def run_merge_job(job_id: int) -> None:
    merge_job_run(job_id=job_id)
