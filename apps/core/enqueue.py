"""Send a Celery task by name, now or once the current transaction commits.

Services queue work with these instead of importing their app's tasks module: the tasks import the
services, so an import the other way would close a cycle. Routing is by task name, so the task lands in
its queue as if it had been called with `delay`; tests check that every name used is a registered task.
"""

from celery import current_app
from django.db import transaction


def send(task_name: str, *args) -> None:
    current_app.send_task(task_name, args=args)


def send_on_commit(task_name: str, *args) -> None:
    transaction.on_commit(lambda: send(task_name, *args))
