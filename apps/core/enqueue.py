"""Send a Celery task by name, now or once the current transaction commits.

Services queue work with these instead of importing their app's tasks module: the tasks import the
services, so an import the other way would close a cycle. Routing is by task name, so the task lands in
its queue as if it had been called with `delay`; tests check that every name used is a registered task.
"""

import logging

from celery import current_app
from django.db import transaction
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
