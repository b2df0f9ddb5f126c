"""The Celery app. Three queues: `default` (imports, exports, bookkeeping), `llm` (calls to teacher,
judge, generator and classifier endpoints) and `gpu` (training and evaluation, one job per worker).

Routing is by the module a task lives in, so a new task lands on the right queue without a setting.
"""

import os

from celery import Celery
from celery.signals import worker_init, worker_ready
from kombu import Queue

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


@worker_init.connect
def say_mode(sender=None, **kwargs):
    from apps.core.apps import log_run_mode

    log_run_mode()


@worker_ready.connect
def recover_on_start(sender=None, **kwargs):
    """A worker that starts after a crash picks up what the dead one left, without waiting for beat."""
    from apps.core.recovery import stale_work_recover

    stale_work_recover()
