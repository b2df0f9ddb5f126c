"""Fast inserts of instructions: COPY on PostgreSQL, bulk_create elsewhere (the embedded SQLite)."""

import orjson
from django.db import connection
from django.utils import timezone

from apps.datasets.formats import Record
from apps.datasets.models import Dataset, Instruction

_COLUMNS = (
    "dataset_id",
    "text",
    "input",
    "reference_output",
    "gold_label",
    "task_category",
    "origin",
    "content_hash",
    "metadata",
    "created_at",
)


class InstructionWriter:
    def __init__(self, dataset: Dataset, origin: str = Instruction.Origin.IMPORTED):
        self.dataset = dataset
        self.origin = origin
        self.use_copy = connection.vendor == "postgresql"

    def write(self, rows: list[tuple[str, Record]]) -> None:
        if not rows:
            return
        now = timezone.now()
        if self.use_copy:
            self._copy(rows, now)
        else:
            Instruction.objects.bulk_create(
                [
                    Instruction(
                        dataset=self.dataset,
                        text=r.text,
                        input=r.input,
                        reference_output=r.reference_output,
                        gold_label=r.gold_label,
                        task_category=r.task_category,
                        origin=self.origin,
                        content_hash=digest,
                        metadata=r.metadata,
                        created_at=now,
                    )
                    for digest, r in rows
                ],
                batch_size=2000,
            )

    def _copy(self, rows, now) -> None:
        table = Instruction._meta.db_table
        sql = f"COPY {table} ({', '.join(_COLUMNS)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            for digest, r in rows:
                copy.write_row(
                    (
                        self.dataset.pk,
                        r.text,
                        r.input,
                        r.reference_output,
                        r.gold_label,
                        r.task_category,
                        self.origin,
                        digest,
                        orjson.dumps(r.metadata).decode(),
                        now,
                    )
                )
