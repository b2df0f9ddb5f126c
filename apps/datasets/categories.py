"""Writes of task categories and of the per-dataset category counts that mirror them.

`DatasetCategoryCount` holds, per dataset, how many instructions carry each category, so that the
dataset page's filter choices and counts cost a few rows however large the dataset is. Whatever adds
instructions with a category (the import's writers) or changes an instruction's category calls these
functions in its own transaction; `dataset_category_counts_rebuild` recounts a dataset from its rows
(the migration that introduced the table, and a repair after a write that went around them).
"""

from collections import Counter
from collections.abc import Iterable, Mapping

from django.db import transaction
from django.db.models import Count

from apps.core.errors import RetortError
from apps.datasets.models import Dataset, DatasetCategoryCount, Instruction

_CATEGORY_MAX = Instruction._meta.get_field("task_category").max_length


def category_counts_add(*, dataset_id: int, deltas: Mapping[str, int]) -> None:
    """Add `deltas` ({category: +n or -n}) to a dataset's counts. The blank category is not counted; a
    count that reaches zero loses its row. The dataset's row lock serialises writers of one dataset."""
    deltas = {c: n for c, n in deltas.items() if c and n}
    if not deltas:
        return
    with transaction.atomic():
        Dataset.objects.select_for_update().filter(pk=dataset_id).values_list("pk", flat=True).first()
        rows = {
            row.category: row
            for row in DatasetCategoryCount.objects.filter(dataset_id=dataset_id, category__in=list(deltas))
        }
        changed, created, emptied = [], [], []
        for category, delta in sorted(deltas.items()):
            row = rows.get(category)
            value = (row.count if row else 0) + delta
            if value < 0:
                raise RetortError(
                    f"Category counts of dataset #{dataset_id}: {category!r} would fall to {value}; "
                    "recount it with dataset_category_counts_rebuild."
                )
            if row is None:
                created.append(DatasetCategoryCount(dataset_id=dataset_id, category=category, count=value))
            elif value == 0:
                emptied.append(row.pk)
            else:
                row.count = value
                changed.append(row)
        DatasetCategoryCount.objects.bulk_update(changed, ["count"], batch_size=1000)
        DatasetCategoryCount.objects.bulk_create(created, batch_size=1000)
        DatasetCategoryCount.objects.filter(pk__in=emptied).delete()


def instruction_category_set(*, instruction_ids: Iterable[int], category: str, only_blank: bool = False) -> int:
    """Give these instructions the task category `category` (with `only_blank`, only those that have
    none yet), keeping their datasets' counts. Returns how many rows changed."""
    category = category.strip()
    if len(category) > _CATEGORY_MAX:
        raise RetortError(
            f"Task category {category[:40]!r}…: {len(category)} characters, over the {_CATEGORY_MAX}-character limit."
        )
    ids = sorted(set(instruction_ids))
    if not ids:
        return 0
    with transaction.atomic():
        qs = Instruction.objects.filter(pk__in=ids).exclude(task_category=category)
        if only_blank:
            qs = qs.filter(task_category="")
        # Rows locked in primary-key order, so two writers of overlapping sets cannot deadlock.
        rows = list(qs.order_by("pk").select_for_update().values_list("pk", "dataset_id", "task_category"))
        if not rows:
            return 0
        Instruction.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(task_category=category)
        deltas: dict[int, Counter] = {}
        for _, dataset_id, old in rows:
            counter = deltas.setdefault(dataset_id, Counter())
            counter[old] -= 1
            counter[category] += 1
        for dataset_id, counter in sorted(deltas.items()):
            category_counts_add(dataset_id=dataset_id, deltas=counter)
    return len(rows)


def dataset_category_counts_rebuild(*, dataset_id: int) -> dict[str, int]:
    """Recount a dataset's categories from its rows (reads the whole dataset: a repair, not a page's
    read). Returns the counts."""
    with transaction.atomic():
        Dataset.objects.select_for_update().filter(pk=dataset_id).values_list("pk", flat=True).first()
        counts = dict(
            Instruction.objects.filter(dataset_id=dataset_id)
            .exclude(task_category="")
            .order_by()
            .values_list("task_category")
            .annotate(n=Count("id"))
            .values_list("task_category", "n")
        )
        DatasetCategoryCount.objects.filter(dataset_id=dataset_id).delete()
        DatasetCategoryCount.objects.bulk_create(
            [DatasetCategoryCount(dataset_id=dataset_id, category=c, count=n) for c, n in sorted(counts.items())],
            batch_size=1000,
        )
    return counts
