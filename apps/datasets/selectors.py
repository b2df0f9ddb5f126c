"""Reads for datasets, instructions and imports."""

from django.db.models import Q, QuerySet

from apps.core.heartbeat import heartbeat_get
from apps.datasets.models import Dataset, ImportJob, Instruction
from apps.datasets.services import HEARTBEAT_KIND


def dataset_list(*, include_owned: bool = False) -> QuerySet[Dataset]:
    """Datasets people pick from: imported ones. What an experiment generated (an owned dataset) only
    with include_owned."""
    qs = Dataset.objects.all()
    return qs if include_owned else qs.filter(owner_experiment__isnull=True)


def dataset_categories(dataset: Dataset) -> list[str]:
    return list(
        Instruction.objects.filter(dataset=dataset)
        .exclude(task_category="")
        .order_by("task_category")
        .values_list("task_category", flat=True)
        .distinct()[:200]
    )


def instruction_page(
    *, dataset: Dataset, after: int = 0, q: str = "", category: str = "", origin: str = "", size: int = 50
) -> tuple[list[Instruction], int | None]:
    """One page of a dataset's instructions by keyset pagination (id > after), never OFFSET, so the
    millionth page costs the same as the first. Returns the rows and the cursor for the next page."""
    qs = Instruction.objects.filter(dataset=dataset, id__gt=after)
    if q:
        qs = qs.filter(Q(text__icontains=q) | Q(input__icontains=q))
    if category:
        qs = qs.filter(task_category=category)
    if origin:
        qs = qs.filter(origin=origin)
    rows = list(
        qs.order_by("id").only("id", "text", "input", "task_category", "origin", "reference_output", "gold_label")[
            : size + 1
        ]
    )
    next_after = rows[size - 1].id if len(rows) > size else None
    return rows[:size], next_after


def import_job_recent(*, limit: int = 20) -> list[ImportJob]:
    return list(ImportJob.objects.select_related("dataset")[:limit])


def import_job_progress(job: ImportJob) -> dict:
    """Live progress of a running job (from the cache), or the final counts of a finished one."""
    if job.is_finished:
        return {"percent": 100, "records": job.records_read}
    live = heartbeat_get(HEARTBEAT_KIND, job.pk) or {}
    total = live.get("total") or 0
    percent = int(100 * live.get("bytes", 0) / total) if total else 0
    return {"percent": min(percent, 99), "records": live.get("records", 0)}
