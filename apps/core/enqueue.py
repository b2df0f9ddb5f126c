"""Send a Celery task by name, now or once the current transaction commits.

Services queue work with these instead of importing their app's tasks module: the tasks import the
services, so an import the other way would close a cycle. Routing is by task name, so the task lands in
its queue as if it had been called with `delay`; tests check that every name used is a registered task.
"""

import logging

from celery import current_app
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# What sending raises while the broker (or the Redis cache beside it) is down or restarting.
UNREACHABLE = (OperationalError, RedisConnectionError, RedisTimeoutError, OSError)


def send(task_name: str, *args) -> None:
    current_app.send_task(task_name, args=args)


def send_on_commit(task_name: str, *args) -> None:
    transaction.on_commit(lambda: send(task_name, *args))


def send_if_reachable(task_name: str, *args) -> bool:
    """Send a wake-up whose loss the recovery sweep repairs (the state it acts on is in the database): with
    the broker unreachable, log it and return False instead of failing the caller, whose own work has
    committed. The sweep runs when a worker (re)connects to the broker (config/celery.py)."""
    try:
        send(task_name, *args)
    except UNREACHABLE as exc:
        log.warning("Not queued %s%s: broker unreachable (%s); the recovery sweep will", task_name, args, exc)
        return False
    return True


def send_on_commit_if_reachable(task_name: str, *args) -> None:
    transaction.on_commit(lambda: send_if_reachable(task_name, *args))


# Jobs (training, generation, merge, import, export) are rows first: a job whose message the broker refused
# stays queued with `queue_unreachable_at` set, which its page shows, and the recovery sweep sends it again
# once the broker is back (`job_resend_unsent`). However many messages reach the workers, a job claims itself
# once (a conditional update or a row lock in its app), so a re-send never runs it twice.
QUEUED = "queued"


def send_job(task_name: str, model, job_id: int) -> bool:
    """Send a job's task; with the broker unreachable, mark the queued row unsent and return False."""
    if send_if_reachable(task_name, job_id):
        return True
    model.objects.filter(pk=job_id, status=QUEUED).update(queue_unreachable_at=timezone.now())
    return False


def send_job_on_commit(task_name: str, model, job_id: int) -> None:
    """The job's message once its row has committed; the request or task that queued it never fails for
    the broker's sake (its transaction has committed by then)."""
    transaction.on_commit(lambda: send_job(task_name, model, job_id))


def job_resend_unsent(task_name: str, model) -> list[int]:
    """Send the queued jobs whose message the broker refused, clearing the mark of each one sent; stops at
    the first refusal (the broker is still away: the next sweep tries again)."""
    sent = []
    unsent = model.objects.filter(status=QUEUED, queue_unreachable_at__isnull=False).order_by("pk")
    for job_id in unsent.values_list("pk", flat=True):
        if not send_if_reachable(task_name, job_id):
            break
        model.objects.filter(pk=job_id).update(queue_unreachable_at=None)
        sent.append(job_id)
    return sent


def job_resend_waiting(task_name: str, model, *, queued_before, skip=()) -> list[int]:
    """Send again the jobs queued since before `queued_before` (their message may have gone with a broker
    restarted without persistence, or with a worker that died between receiving and claiming), stamped so
    that a job waiting behind a long queue is re-sent once a period, not at every sweep."""
    waiting = list(
        model.objects.filter(status=QUEUED, updated_at__lt=queued_before)
        .exclude(pk__in=list(skip))
        .values_list("pk", flat=True)
    )
    model.objects.filter(pk__in=waiting).update(updated_at=timezone.now())
    for job_id in waiting:
        send_job(task_name, model, job_id)
    return waiting
