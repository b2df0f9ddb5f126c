"""Reads for datasets, instructions and imports."""

from django.db.models import QuerySet

from apps.datasets.models import Dataset, ImportJob


def dataset_list() -> QuerySet[Dataset]:
    return Dataset.objects.all()


def import_job_recent(*, limit: int = 20) -> list[ImportJob]:
    return list(ImportJob.objects.select_related("dataset")[:limit])
