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
_MAX_ID = 2**63 - 1


def dataset_id_range(dataset_id: int) -> tuple[int, int] | None:
    """The first and last instruction ids of a dataset, or None when it has none. Row comparisons on
    (dataset_id, id) pin both reads to the (dataset, id) index: asked for min(id) under `dataset_id = x`,
    PostgreSQL walks the primary key from id 1 and skips every earlier dataset's rows."""
    table = Instruction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE (dataset_id, id) > (%s, 0) AND dataset_id = %s "  # noqa: S608
            "ORDER BY dataset_id, id LIMIT 1",
            [dataset_id, dataset_id],
        )
        first = cursor.fetchone()
        if first is None:
            return None
        cursor.execute(
            f"SELECT id FROM {table} WHERE (dataset_id, id) < (%s, %s) AND dataset_id = %s "  # noqa: S608
            "ORDER BY dataset_id DESC, id DESC LIMIT 1",
            [dataset_id, _MAX_ID, dataset_id],
        )
        return first[0], cursor.fetchone()[0]


def _first_id(qs: QuerySet[Instruction], order: str) -> int | None:
    return next(iter(qs.order_by(order).values_list("id", flat=True)[:1]), None)


def instruction_page(
    qs: QuerySet[Instruction],
    *,
    id_range: tuple[int, int] | None,
    after: int | None = None,
    before: int | None = None,
    size: int = 50,
) -> InstructionPage:
    """One page of `qs` (one dataset's instructions, whose ids span `id_range`, see dataset_id_range)
    by keyset pagination, never OFFSET, so the millionth page costs what the first does: the `size` rows
    after id `after` (forwards; from the start when both are None) or the `size` rows before id `before`
    (backwards), always shown in id order. One query for the page and one for whether rows lie the other
    way. Every read is bounded by the dataset's first and last ids, so the planner's walk along the
    primary key starts inside the dataset rather than at the table's first row."""
    if after is not None and before is not None:
        raise ValueError("A page is either after an id or before one, not both.")
    if id_range is None:
        return InstructionPage([])
    first, last = id_range
    qs = qs.only(*_PAGE_FIELDS)
    if before is None:
        start = max((after or 0) + 1, first)
        rows = list(qs.filter(id__gte=start, id__lte=last).order_by("id")[: size + 1])
        more, rows = len(rows) > size, rows[:size]
        page = InstructionPage(rows, next_after=rows[-1].id if more else None)
        if after and _first_id(qs.filter(id__gte=first, id__lte=min(after, last)), "-id") is not None:
            page.previous_before = rows[0].id if rows else after + 1
        return page
    end = min(before - 1, last)
    rows = list(qs.filter(id__gte=first, id__lte=end).order_by("-id")[: size + 1])
    more, rows = len(rows) > size, rows[:size][::-1]
    page = InstructionPage(rows, previous_before=rows[0].id if more else None)
    if _first_id(qs.filter(id__gte=max(before, first), id__lte=last), "id") is not None:
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
