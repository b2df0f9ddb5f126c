from celery import shared_task

from apps.datasets.services import import_job_run


# Imports are atomic, so a worker that dies mid-import leaves nothing behind: the task is re-delivered
# (acks_late + reject_on_worker_lost, set globally) and runs again from the start.
@shared_task(soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def run_import_job(job_id: int) -> None:
    import_job_run(job_id=job_id)
