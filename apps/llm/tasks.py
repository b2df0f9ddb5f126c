"""Celery tasks for the gateway (queue `llm`). Thin: they take ids, hold the endpoint lease, and hand over
to the runner. Safe to deliver twice: a second copy finds the lease taken or nothing pending."""

import logging
import os
import socket
import uuid

from celery import shared_task
from celery.signals import worker_ready
from django.core.cache import cache

from apps.core.connection_lost import CONNECTION_LOST, retry_on_a_fresh_connection
from apps.llm import conf
from apps.llm.classifier_training import classifier_version_build
from apps.llm.lease import lease_acquire, lease_release, lease_seconds_left
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.runner import run_endpoint
from config.celery import broker_reconnected

log = logging.getLogger(__name__)

# A run gives its worker back after this long and queues its own continuation, well inside Celery's
# time limit, so one huge batch cannot hold a worker slot for hours.
MAX_RUN_S = float(os.environ.get("RETORT_LLM_MAX_RUN_S", 3000))


def _has_pending(endpoint_id: int) -> bool:
    return LLMCall.objects.filter(endpoint_id=endpoint_id, status=LLMCall.Status.PENDING).exists()


@shared_task(bind=True, acks_late=True, soft_time_limit=MAX_RUN_S + 300, time_limit=MAX_RUN_S + 600)
def process_pending_calls(self, endpoint_id: int) -> dict:
    try:
        return _process_pending_calls(endpoint_id)
    except CONNECTION_LOST as exc:
        # Calls whose replies were not yet recorded stay pending in the ledger; the lease this run could not
        # give back runs out by itself, and the retry waits for it.
        log.warning("LLM run on endpoint %s lost its database connection (%s); retrying", endpoint_id, exc)
        raise retry_on_a_fresh_connection(self, exc) from exc


def _process_pending_calls(endpoint_id: int) -> dict:
    endpoint = LLMEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        return {"skipped": "no such endpoint"}
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    ttl = conf.lease_seconds()
    if not lease_acquire(endpoint_id=endpoint_id, owner=owner, ttl_s=ttl):
        # Another runner has the endpoint and will see new pending rows. If it died, its lease runs
        # out: one waiting copy of this task (not one per enqueue) comes back just after that.
        wait = lease_seconds_left(endpoint_id=endpoint_id) + 1
        if cache.add(f"llm:waiting:{endpoint_id}", owner, timeout=int(wait) + 1):
            process_pending_calls.apply_async((endpoint_id,), countdown=wait)
        return {"skipped": "endpoint busy"}
    try:
        summary = run_endpoint(endpoint, owner=owner, max_run_s=MAX_RUN_S)
    finally:
        lease_release(endpoint_id=endpoint_id, owner=owner)
    # Rows enqueued while the lease was being given back would otherwise wait for the next kick.
    if summary.more_work or (not summary.stopped and not summary.paused and _has_pending(endpoint_id)):
        process_pending_calls.delay(endpoint_id)
    log.info(
        "LLM run on %s: sent %d, ok %d, invalid %d, failed %d%s",
        endpoint.name,
        summary.sent,
        summary.ok,
        summary.invalid,
        summary.failed,
        f"; stopped: {summary.stopped}" if summary.stopped else "",
    )
    return {
        "sent": summary.sent,
        "ok": summary.ok,
        "invalid": summary.invalid,
        "failed": summary.failed,
        "stopped": summary.stopped,
    }


@shared_task(soft_time_limit=60, time_limit=120)
def resume_pending_calls() -> list[int]:
    """Start a runner for every endpoint with pending calls (after a worker restart, calls whose task
    died with the old worker are still pending in the ledger)."""
    endpoint_ids = sorted(
        set(
            LLMCall.objects.filter(status=LLMCall.Status.PENDING)
            .exclude(endpoint_id=None)
            .values_list("endpoint_id", flat=True)
            .distinct()
        )
    )
    for endpoint_id in endpoint_ids:
        process_pending_calls.delay(endpoint_id)
    return endpoint_ids


@worker_ready.connect
@broker_reconnected.connect
def _resume_after_start(sender=None, **kwargs):
    try:
        queues = {queue.name for queue in sender.task_consumer.queues}
    except AttributeError:
        queues = set()
    if "llm" in queues:
        resume_pending_calls.delay()


@shared_task(acks_late=True, soft_time_limit=1500, time_limit=1800)
def retrain_task_classifier(version_id: int) -> dict:
    """Fit the local task classifier's next head (a queued ClassifierVersion). A second delivery finds the
    version claimed or done and does nothing."""
    version = classifier_version_build(version_id=version_id)
    if version is None:
        return {"skipped": "not queued"}
    return {"version": version.pk, "examples": version.examples, "accuracy": version.accuracy}
