"""Wake the runner of an endpoint once the current transaction commits.

The task is sent by name through the Celery app, so writers (services) need not import the tasks module,
which imports the runner, which imports the services.
"""

from celery import current_app
from django.db import transaction

PROCESS_TASK = "apps.llm.tasks.process_pending_calls"


def kick_endpoint(endpoint_id: int) -> None:
    transaction.on_commit(lambda: current_app.send_task(PROCESS_TASK, args=(endpoint_id,)))
