"""Services send tasks by name (apps/core/enqueue.py): each name they use must be a registered task, and
a task sent that way goes to the queue its name routes to."""

import pytest

from apps.datasets.services import RUN_IMPORT_TASK
from apps.llm.kick import PROCESS_TASK
from config.celery import app


@pytest.mark.parametrize("name,queue", [(RUN_IMPORT_TASK, "default"), (PROCESS_TASK, "llm")])
def test_task_names_sent_by_services_are_registered_and_routed(name, queue):
    app.loader.import_default_modules()
    assert name in app.tasks, f"{name} is not a registered task"
    assert app.amqp.router.route({}, name)["queue"].name == queue
