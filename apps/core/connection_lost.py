"""A task whose database connection is dropped under it (a PostgreSQL restart or failover, a terminated
session) retries on a fresh connection instead of failing: what it committed stays, and its next attempt
finds where it was. Celery would otherwise record a failure and ack the message, and the work it stood for
would wait for the next recovery sweep, or for ever when nothing else queues it again."""

from django.db import InterfaceError, OperationalError, connections

CONNECTION_LOST = (OperationalError, InterfaceError)
RETRY_MAX_S = 30


def retry_on_a_fresh_connection(task, exc: Exception):
    """Close this thread's connections (Django would reuse the dead one) and return the task's retry to
    raise: soon at first, backing off to RETRY_MAX_S, for as long as the database stays away."""
    connections.close_all()
    retries = task.request.retries
    # max_retries=None would mean the task's own limit; one more than so far means no limit.
    return task.retry(exc=exc, countdown=min(2**retries, RETRY_MAX_S), max_retries=retries + 1)
