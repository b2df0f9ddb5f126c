"""The demo datasets that `make run` imports on a fresh installation (files in demo_data/)."""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.datasets.importing import ImportReport, dataset_import_file
from apps.datasets.models import Dataset, ImportJob

DEMO_DIR = settings.BASE_DIR / "demo_data"
SOURCE = "Self-Instruct (Wang et al., ACL 2023), github.com/yizhongw/self-instruct"


@dataclass(frozen=True)
class DemoDataset:
    name: str
    filename: str
    description: str


DEMO_DATASETS = (
    DemoDataset(
        "demo-self-instruct-seeds",
        "self-instruct_seed_tasks.jsonl",
        "175 human-written seed tasks with an example input and output each.",
    ),
    DemoDataset(
        "demo-user-oriented-davinci003",
        "self-instruct_text-davinci-003_predictions.jsonl",
        "252 user-oriented instructions answered by text-davinci-003 (replayable teacher answers).",
    ),
)


def demo_datasets_load() -> list[ImportReport]:
    """Import each demo dataset that does not exist yet; a second call does nothing. Each import is
    recorded as a finished ImportJob, so the home page's "Recent imports" shows it like any other."""
    reports = []
    for demo in DEMO_DATASETS:
        if Dataset.objects.filter(name=demo.name).exists():
            continue
        started = timezone.now()
        with transaction.atomic():
            report = dataset_import_file(path=DEMO_DIR / demo.filename, dataset_name=demo.name)
            Dataset.objects.filter(pk=report.dataset_id).update(
                description=demo.description, source=SOURCE, license="Apache-2.0"
            )
            ImportJob.objects.create(
                dataset_name=demo.name,
                dataset_id=report.dataset_id,
                source_path=str(DEMO_DIR / demo.filename),
                original_filename=demo.filename,
                detected_format=report.format,
                status=ImportJob.Status.SUCCEEDED,
                records_read=report.records_read,
                imported=report.imported,
                duplicates=report.duplicates,
                message=report.summary(),
                attempts=1,
                started_at=started,
                finished_at=timezone.now(),
            )
        reports.append(report)
    return reports
