from celery import shared_task

from apps.core.recovery import stale_work_recover


@shared_task(soft_time_limit=300, time_limit=330)
def recover_stale_work() -> None:
    stale_work_recover()
