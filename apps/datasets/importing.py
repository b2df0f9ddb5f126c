"""Importing a file into a dataset: streaming, validated, de-duplicated and all-or-nothing.

One transaction per import. Bad records are collected with their line or record number; unless
`skip_invalid` is set, any bad record rolls the whole import back. Duplicates (same content hash within
the file or already in the dataset) are counted and skipped.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction

from apps.core.errors import RetortError
from apps.datasets.bulk_writer import instruction_writer
from apps.datasets.formats import FileFormatError, Record, RecordProblem, content_hash, read_records
from apps.datasets.models import Dataset, Instruction

BATCH_SIZE = 5000
MAX_PROBLEMS_KEPT = 1000
_LABEL_MAX = Instruction._meta.get_field("gold_label").max_length
_CATEGORY_MAX = Instruction._meta.get_field("task_category").max_length
_LICENSE_MAX = Dataset._meta.get_field("license").max_length

ProgressCallback = Callable[[int, int, int], None]  # records read, bytes read, total bytes


@dataclass
class ImportReport:
    dataset_name: str
    path: str
    format: str = ""
    dataset_id: int | None = None
    records_read: int = 0
    imported: int = 0
    duplicates: int = 0
    problems: list[RecordProblem] = field(default_factory=list)
    problem_count: int = 0
    skipped_invalid: int = 0

    def add_problem(self, problem: RecordProblem) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)

    def summary(self) -> str:
        parts = [f"{self.imported:,} imported", f"{self.duplicates:,} duplicates skipped"]
        if self.skipped_invalid:
            parts.append(f"{self.skipped_invalid:,} invalid records skipped")
        return f"{self.dataset_name}: " + ", ".join(parts) + f" ({self.records_read:,} records read, {self.format})"


class ImportFailed(RetortError):
    """Nothing was imported. `report.problems` says where and why; the report's counts say so too (0
    imported, 0 duplicates skipped), keeping only how many records were read.

    `skippable` is true when only invalid records stopped the import, so skipping them would let the rest
    in. The message does not say how to ask for that: the command line (--skip-invalid), the upload page
    (its checkbox) and the API (skip_invalid) each say it in their own words."""

    def __init__(self, message: str, report: ImportReport, *, skippable: bool = False):
        report.imported = report.duplicates = report.skipped_invalid = 0
        super().__init__(message, problems=[str(p) for p in report.problems[:50]])
        self.report = report
        self.skippable = skippable


class _Rollback(Exception):
    pass


def _record_problem(record: Record) -> str | None:
    """Checks the readers cannot make: what the database would refuse."""
    for name in ("text", "input", "reference_output", "gold_label", "task_category"):
        if "\x00" in getattr(record, name):
            return f"'{name}' contains a NUL character (\\u0000), which cannot be stored"
    if record.metadata:
        try:
            encoded = orjson.dumps(record.metadata)
        except orjson.JSONEncodeError:  # orjson writes at most 255 levels; the JSON column is written by it
            return "a metadata value nests arrays or objects more than 255 levels deep"
        if b"\\u0000" in encoded:
            return "a metadata value contains a NUL character (\\u0000), which cannot be stored"
    if len(record.gold_label) > _LABEL_MAX:
        return f"the label is {len(record.gold_label)} characters, over the {_LABEL_MAX}-character limit"
    if len(record.task_category) > _CATEGORY_MAX:
        return f"the task category is {len(record.task_category)} characters, over the {_CATEGORY_MAX}-character limit"
    return None


class _LicenceConflict(Exception):
    pass


def _lock_or_create_dataset(name: str, user, license: str = "") -> tuple[Dataset, bool]:
    existing = Dataset.objects.select_for_update().filter(name=name).first()
    if existing:
        if license and existing.license and existing.license != license:
            raise _LicenceConflict(existing.license)
        if license and not existing.license:
            existing.license = license
            existing.save(update_fields=["license", "updated_at"])
        return existing, False
    dataset = Dataset(name=name, license=license, created_by=user if getattr(user, "is_authenticated", False) else None)
    dataset.full_clean()
    dataset.save()
    return dataset, True


def dataset_import_file(
    *,
    path: Path | str,
    dataset_name: str,
    fmt: str = "auto",
    skip_invalid: bool = False,
    user=None,
    on_progress: ProgressCallback | None = None,
    max_record_bytes: int | None = None,
    license: str = "",
) -> ImportReport:
    """Import `path` into the dataset `dataset_name` (created if new). `license` is recorded on a new
    dataset or one that has none yet; a dataset that records another licence refuses the file."""
    path = Path(path)
    dataset_name = dataset_name.strip()
    license = (license or "").strip()
    report = ImportReport(dataset_name=dataset_name, path=str(path))
    if not dataset_name:
        raise ImportFailed("A dataset name is required.", report)
    if len(license) > _LICENSE_MAX:
        raise ImportFailed(
            f"The licence is {len(license)} characters, over the {_LICENSE_MAX}-character limit.", report
        )
    if not path.is_file():
        raise ImportFailed(f"No such file: {path}", report)
    limit = max_record_bytes or settings.RETORT_IMPORT_MAX_RECORD_BYTES
    try:
        stream = read_records(path, fmt, limit)
        report.format = stream.format
        with transaction.atomic():
            dataset, created = _lock_or_create_dataset(dataset_name, user, license)
            report.dataset_id = dataset.pk
            _import_stream(
                stream, dataset, check_existing=not created and dataset.size > 0, report=report, on_progress=on_progress
            )
            if report.problem_count and not skip_invalid:
                raise _Rollback
            if report.imported == 0 and report.duplicates == 0:
                raise ImportFailed(f"{path.name}: no records found; nothing was imported.", report)
            report.skipped_invalid = report.problem_count
            Dataset.objects.filter(pk=dataset.pk).update(size=dataset.size + report.imported)
    except FileFormatError as exc:
        where = f" at {exc.location}" if exc.location else ""
        report.add_problem(RecordProblem(exc.location or "file", exc.reason))
        raise ImportFailed(f"{path.name}{where}: {exc.reason}. Nothing was imported.", report) from None
    except _Rollback:
        first = report.problems[0]
        raise ImportFailed(
            f"{path.name}: {report.problem_count:,} invalid record(s), first at {first.location}: {first.reason}. "
            "Nothing was imported.",
            report,
            skippable=True,
        ) from None
    except DatabaseError as exc:
        raise ImportFailed(
            f"{path.name}: the database refused the import ({exc}). Nothing was imported.", report
        ) from exc
    except ValidationError as exc:
        raise ImportFailed(f"Dataset name: {'; '.join(exc.messages)}", report) from None
    except _LicenceConflict as exc:
        raise ImportFailed(
            f"Dataset {dataset_name!r} records the licence {exc.args[0]!r}, not {license!r}: import data under "
            "another licence into a dataset of its own. Nothing was imported.",
            report,
        ) from None
    return report


def _import_stream(stream, dataset: Dataset, *, check_existing: bool, report: ImportReport, on_progress) -> None:
    writer = instruction_writer(dataset, check_existing=check_existing)
    seen: set[int] = set()  # 128-bit prefixes of the hashes seen in this file
    batch: list[tuple[str, Record]] = []
    try:
        for item in stream:
            report.records_read += 1
            if isinstance(item, RecordProblem):
                report.add_problem(item)
                continue
            problem = _record_problem(item)
            if problem:
                report.add_problem(RecordProblem(item.location, problem))
                continue
            digest = content_hash(item.text, item.input, item.turns)
            key = int(digest[:32], 16)
            if key in seen:
                report.duplicates += 1
                continue
            seen.add(key)
            batch.append((digest, item))
            if len(batch) >= BATCH_SIZE:
                writer.write(batch)
                batch = []
                if on_progress:
                    on_progress(report.records_read, stream.bytes_read, stream.total_bytes)
        if batch:
            writer.write(batch)
        imported, known = writer.close()
    except BaseException:
        writer.abort()
        raise
    report.imported = imported
    report.duplicates += known
    if on_progress:
        on_progress(report.records_read, stream.total_bytes, stream.total_bytes)
