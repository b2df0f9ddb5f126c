"""Work left behind by a dead worker is found in the database and queued again.

Brokers differ in what they do with a task whose worker was killed (the file-system transport loses it,
Redis returns it only after its visibility timeout), so the database is the source of truth: each job
claims itself under a row lock and keeps its row locked until its result commits. A recoverer re-queues a
running job only when it can take that lock itself, which the database grants only once the worker's
session has ended; the cache heartbeat merely spares the check for jobs seen alive lately. Recoverers run
when a worker starts and every minute from Celery beat.
"""

import logging

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


# Jobs that run for hours outside any one transaction (gpu jobs) show life by a heartbeat column instead of
# a row lock; their recoverers re-queue the ones whose heartbeat went stale. Named here, beside the setting,
# so that the sweep always covers them.
HEARTBEAT_RECOVERERS = [
    "apps.training.services.training_job_recover_stale",
    "apps.training.services.generation_job_recover_stale",
    "apps.training.services.merge_job_recover_stale",
    # Not a job: wakes running experiments, whose advance task may have died with its worker.
    "apps.experiments.recovery.experiment_recover_stale",
    # Exports have no heartbeat: queued ones whose message the broker refused or lost are sent again.
    "apps.experiments.exports.services.export_job_recover_stale",
]


def stale_work_recover(*, stale_after_s: float | None = None) -> dict[str, list[int]]:
    stale_after_s = settings.RETORT_STALE_AFTER_S if stale_after_s is None else stale_after_s
    requeued = {}
    extra = [path for path in HEARTBEAT_RECOVERERS if path not in settings.RETORT_RECOVERERS]
    for path in [*settings.RETORT_RECOVERERS, *extra]:
        ids = import_string(path)(stale_after_s=stale_after_s)
        if ids:
            logger.warning("Re-queued work left by a dead worker: %s %s", path, ids)
        requeued[path] = ids
    return requeued
