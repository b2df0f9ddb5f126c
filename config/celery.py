"""The Celery app. Three queues: `default` (imports, exports, bookkeeping), `llm` (calls to teacher,
judge, generator and classifier endpoints) and `gpu` (training and evaluation, one job per worker).

Routing is by the module a task lives in, so a new task lands on the right queue without a setting.
"""

import logging
import os

from celery import Celery, bootsteps
from celery.signals import worker_init, worker_ready
from celery.utils.dispatch import Signal
from kombu import Queue

logger = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

QUEUES = ("default", "llm", "gpu")

# Task module -> queue. A task module not listed here goes to `default`.
QUEUE_BY_MODULE = {
    "apps.llm.tasks": "llm",
    "apps.judging.tasks": "llm",
    "apps.training.tasks": "gpu",
}


def route_by_module(name, args, kwargs, options, task=None, **kw):
    module = name.rsplit(".", 1)[0]
    return {"queue": QUEUE_BY_MODULE.get(module, "default")}


app = Celery("retort")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=[Queue(name, routing_key=name) for name in QUEUES],
    task_default_queue="default",
    task_routes=(route_by_module,),
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # Tasks write their results to the database through services; nobody reads Celery results.
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    # No global time limit: training runs for days. Every other task declares its own limits (tested).
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    timezone="UTC",
    beat_schedule={
        "recover-stale-work": {"task": "apps.core.tasks.recover_stale_work", "schedule": 60.0},
    },
)
app.autodiscover_tasks()

# Sent (with the consumer as sender, as worker_ready is) each time a worker's consumer connects to the broker
# again after losing it. A Redis broker restarted without persistence comes back empty: every queued task
# (an experiment's advance, an endpoint's runner) is gone, and nothing else would queue them again until a
# worker restarts. Receivers run the same recovery as at start-up; the database says what is unfinished.
broker_reconnected = Signal(name="broker_reconnected")


class _ReconnectSweep(bootsteps.StartStopStep):
    """A consumer step: Celery starts the consumer's steps again after every reconnection."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.connected_before = False

    def start(self, parent):
        if self.connected_before:  # the first start is worker_ready's
            logger.warning("Reconnected to the broker: re-queueing work whose messages it may have lost")
            broker_reconnected.send(sender=parent)
        self.connected_before = True


app.steps["consumer"].add(_ReconnectSweep)


@worker_init.connect
def say_mode(sender=None, **kwargs):
    from apps.core.apps import log_run_mode

    log_run_mode()


@worker_ready.connect
@broker_reconnected.connect
def recover_on_start(sender=None, **kwargs):
    """A worker that starts after a crash picks up what the dead one left, without waiting for beat; so does
    one that reconnects after a broker restart."""
    from apps.core.recovery import stale_work_recover

    stale_work_recover()
