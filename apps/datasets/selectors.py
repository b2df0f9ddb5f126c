"""Reads for datasets, instructions and imports."""

import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Q, QuerySet

from apps.core.heartbeat import heartbeat_get
from apps.datasets.models import Dataset, DatasetCategoryCount, ImportJob, Instruction
from apps.datasets.services import HEARTBEAT_KIND


def dataset_list(*, include_owned: bool = False) -> QuerySet[Dataset]:
    """Datasets people pick from: imported ones. What an experiment generated (an owned dataset) only
    with include_owned."""
    qs = Dataset.objects.all()
    return qs if include_owned else qs.filter(owner_experiment__isnull=True)


def dataset_category_counts(dataset: Dataset) -> list[tuple[str, int]]:
    """(category, instructions) of a dataset, by name, from the counts every writer keeps
    (apps/datasets/categories.py): a few rows, however large the dataset."""
    return list(
        DatasetCategoryCount.objects.filter(dataset=dataset).order_by("category").values_list("category", "count")
    )


@dataclass
class InstructionPage:
    """One page of a keyset walk: the rows in id order, and the cursors of the pages either side (None
    where there is none)."""

    rows: list[Instruction]
    next_after: int | None = None
    previous_before: int | None = None


_WORD = re.compile(r"[^\W_]+")  # letters and digits: what PostgreSQL's text parser keeps as words
MAX_SEARCH_WORDS = 12
# The expression the GIN index of migration 0010 is built on: keep the two identical.
SEARCH_VECTOR = SearchVector("text", "input", config="simple")


def search_words(q: str) -> list[str]:
    return _WORD.findall(q.lower())[:MAX_SEARCH_WORDS]


def instruction_search(qs: QuerySet[Instruction], q: str) -> QuerySet[Instruction]:
    """Instructions whose text or input holds every word of `q` at the start of a word, ignoring case
    ("break" finds "Breakfast"; "fast" does not). On PostgreSQL a full-text query over SEARCH_VECTOR,
    answered by its GIN index (migration 0010); on SQLite one regular expression per word over the rows,
    with the same result for ordinary words. A query with no letters or digits matches nothing."""
    if not q.strip():
        return qs
    words = search_words(q)
    if not words:
        return qs.none()
    if connection.vendor == "postgresql":
        # Each word is letters and digits only, so it cannot carry tsquery syntax.
        query = SearchQuery(" & ".join(f"{w}:*" for w in words), config="simple", search_type="raw")
        return qs.alias(_search=SEARCH_VECTOR).filter(_search=query)
    for word in words:
        start = rf"(?:^|[\W_]){re.escape(word)}"
        qs = qs.filter(Q(text__iregex=start) | Q(input__iregex=start))
    return qs


def instruction_filter(
    *, dataset: Dataset, q: str = "", category: str = "", origin: str = "", reference: str = ""
) -> QuerySet[Instruction]:
    """A dataset's instructions under the browser's filters; `reference` is "yes" (has a reference
    output), "no" (has none) or "" (either)."""
    qs = instruction_search(Instruction.objects.filter(dataset=dataset), q)
    if category:
        qs = qs.filter(task_category=category)
    if origin:
        qs = qs.filter(origin=origin)
    if reference == "yes":
        qs = qs.exclude(reference_output="")
    elif reference == "no":
        qs = qs.filter(reference_output="")
    return qs


_PAGE_FIELDS = ("id", "dataset_id", "text", "input", "task_category", "origin", "reference_output", "gold_label")


def instruction_page(
    qs: QuerySet[Instruction], *, after: int | None = None, before: int | None = None, size: int = 50
) -> InstructionPage:
    """One page of `qs` by keyset pagination, never OFFSET, so the millionth page costs what the first
    does: the `size` rows after id `after` (forwards; from the start when both are None) or the `size`
    rows before id `before` (backwards), always shown in id order. One query for the page and one
    indexed existence test for the other direction."""
    if after is not None and before is not None:
        raise ValueError("A page is either after an id or before one, not both.")
    qs = qs.only(*_PAGE_FIELDS)
    if before is None:
        rows = list(qs.filter(id__gt=after or 0).order_by("id")[: size + 1])
        more, rows = len(rows) > size, rows[:size]
        page = InstructionPage(rows, next_after=rows[-1].id if more else None)
        if after and qs.filter(id__lte=after).exists():
            page.previous_before = rows[0].id if rows else after + 1
        return page
    rows = list(qs.filter(id__lt=before).order_by("-id")[: size + 1])
    more, rows = len(rows) > size, rows[:size][::-1]
    page = InstructionPage(rows, previous_before=rows[0].id if more else None)
    if qs.filter(id__gte=before).exists():
        page.next_after = rows[-1].id if rows else before - 1
    return page


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
