"""Fast inserts of instructions, with duplicates against the dataset's existing rows counted.

PostgreSQL: binary COPY from a writer thread, so that parsing the next batch (Python, one core)
overlaps the server storing the last (PostgreSQL, the other core). The thread works on the caller's
own connection and so inside the caller's transaction; the caller makes no other query until close().
Elsewhere (the embedded SQLite): bulk_create, in the caller's thread.
Both count the categories of the rows they store and add them to the dataset's category counts on
close(), in the caller's transaction.
"""

import queue
import threading
from collections import Counter

import orjson
from django.db import DatabaseError, connection
from django.utils import timezone
from psycopg.types.json import set_json_dumps

from apps.datasets.categories import category_counts_add
from apps.datasets.formats import Record
from apps.datasets.models import Dataset, Instruction

Batch = list[tuple[str, Record]]
_COLUMNS = (
    "dataset_id", "text", "input", "reference_output", "gold_label", "task_category",
    "origin", "content_hash", "metadata", "created_at",
)  # fmt: skip
_TYPES = ["int8", "text", "text", "text", "text", "text", "text", "text", "jsonb", "timestamptz"]


def _drop_known(rows: Batch, known: set[str]) -> tuple[Batch, int]:
    """The rows whose hash the dataset does not hold yet, and how many it did."""
    fresh = [(h, r) for h, r in rows if h not in known]
    return fresh, len(rows) - len(fresh)


def instruction_writer(dataset: Dataset, *, check_existing: bool):
    if connection.vendor == "postgresql":
        return CopyWriter(dataset, check_existing=check_existing)
    return OrmWriter(dataset, check_existing=check_existing)


class OrmWriter:
    def __init__(self, dataset: Dataset, *, check_existing: bool):
        self.dataset, self.check_existing = dataset, check_existing
        self.imported = self.duplicates = 0
        self.categories: Counter[str] = Counter()

    def write(self, rows: Batch) -> None:
        if self.check_existing:
            known = set(
                Instruction.objects.filter(dataset=self.dataset, content_hash__in=[h for h, _ in rows]).values_list(
                    "content_hash", flat=True
                )
            )
            rows, dropped = _drop_known(rows, known)
            self.duplicates += dropped
        now = timezone.now()
        Instruction.objects.bulk_create(
            [
                Instruction(
                    dataset=self.dataset, text=r.text, input=r.input, reference_output=r.reference_output,
                    gold_label=r.gold_label, task_category=r.task_category, content_hash=digest,
                    metadata=r.metadata, created_at=now,
                )
                for digest, r in rows
            ],
            batch_size=2000,
        )  # fmt: skip
        self.imported += len(rows)
        self.categories.update(r.task_category for _, r in rows)

    def close(self) -> tuple[int, int]:
        category_counts_add(dataset_id=self.dataset.pk, deltas=self.categories)
        return self.imported, self.duplicates

    def abort(self) -> None:
        pass


class CopyWriter:
    def __init__(self, dataset: Dataset, *, check_existing: bool):
        self.dataset, self.check_existing = dataset, check_existing
        self.imported = self.duplicates = 0
        self.categories: Counter[str] = Counter()  # written by the thread, read after it has ended
        self.error: BaseException | None = None
        connection.ensure_connection()
        self._raw = connection.connection
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self._thread = threading.Thread(target=self._run, name="instruction-copy", daemon=True)
        self._thread.start()

    def write(self, rows: Batch) -> None:
        if self.error is not None:
            self._raise()
        self._queue.put(rows)

    def close(self) -> tuple[int, int]:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            self._raise()
        category_counts_add(dataset_id=self.dataset.pk, deltas=self.categories)
        return self.imported, self.duplicates

    def abort(self) -> None:
        """Stop the thread after a failure in the caller; the caller's transaction rolls back."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _raise(self):
        raise DatabaseError(f"storing instructions failed: {self.error}") from self.error

    def _run(self) -> None:
        table = Instruction._meta.db_table
        copy_sql = f"COPY {table} ({', '.join(_COLUMNS)}) FROM STDIN WITH (FORMAT BINARY)"
        existing_sql = f"SELECT content_hash FROM {table} WHERE dataset_id = %s AND content_hash = ANY(%s)"  # noqa: S608
        try:
            with self._raw.cursor() as cursor:
                set_json_dumps(orjson.dumps, cursor)  # psycopg's default is the slower json module
                while (rows := self._queue.get()) is not None:
                    if self.check_existing:
                        cursor.execute(existing_sql, (self.dataset.pk, [h for h, _ in rows]))
                        rows, dropped = _drop_known(rows, {h for (h,) in cursor.fetchall()})
                        self.duplicates += dropped
                    now = timezone.now()
                    with cursor.copy(copy_sql) as copy:
                        copy.set_types(_TYPES)
                        for digest, r in rows:
                            copy.write_row((
                                self.dataset.pk, r.text, r.input, r.reference_output, r.gold_label,
                                r.task_category, Instruction.Origin.IMPORTED, digest, r.metadata, now,
                            ))  # fmt: skip
                    self.imported += len(rows)
                    self.categories.update(r.task_category for _, r in rows)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread by close()/write()
            self.error = exc
            while self._queue.get() is not None:  # let the producer finish putting without blocking
                pass
