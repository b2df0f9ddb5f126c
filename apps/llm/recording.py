"""Write call results to the ledger in groups, one statement per group.

At hundreds of results a second the writes must not throttle the calls: Django's bulk_update builds a
CASE expression per field and row in Python, which costs more than the HTTP call. One
`WITH v(...) AS (VALUES …) UPDATE … FROM v` statement per group is cheap on both PostgreSQL and SQLite.
Only rows still pending are written, so a result delivered twice (a runner that lost its lease) changes
nothing the second time.
"""

import json
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from apps.llm.models import LLMCall

_COLUMNS = (
    # name, PostgreSQL type
    ("id", "bigint"),
    ("status", "varchar"),
    ("reply", "text"),
    ("finish_reason", "varchar"),
    ("error", "text"),
    ("attempts", "integer"),
    ("prompt_tokens", "integer"),
    ("completion_tokens", "integer"),
    ("cost", "numeric"),
    ("latency_ms", "integer"),
    ("http_status", "integer"),
    ("parsed", "jsonb"),
    ("finished_at", "timestamptz"),
)
_GROUP = 500


@dataclass
class Outcome:
    call_id: int
    status: str
    reply: str = ""
    finish_reason: str = ""
    error: str = ""
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)
    latency_ms: int | None = None
    http_status: int | None = None
    parsed: dict | None = None

    @property
    def finished(self) -> bool:
        return self.status != LLMCall.Status.PENDING


def _statement(rows: int) -> str:
    table = connection.ops.quote_name(LLMCall._meta.db_table)
    if connection.vendor == "postgresql":
        row = "(" + ", ".join(f"%s::{kind}" for _, kind in _COLUMNS) + ")"
    else:
        row = "(" + ", ".join("%s" for _ in _COLUMNS) + ")"
    names = ", ".join(name for name, _ in _COLUMNS)
    sets = ", ".join(f"{name} = v.{name}" for name, _ in _COLUMNS[1:])
    # Only placeholders and our own column names go into the text; every value is a parameter.
    return (
        f"WITH v({names}) AS (VALUES {', '.join([row] * rows)}) "  # noqa: S608
        f"UPDATE {table} SET {sets} FROM v WHERE {table}.id = v.id AND {table}.status = 'pending'"
    )


def write_outcomes(outcomes: list[Outcome]) -> None:
    if not outcomes:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    ops = connection.ops
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        for start in range(0, len(outcomes), _GROUP):
            group = outcomes[start : start + _GROUP]
            params: list = []
            for o in group:
                params += [
                    o.call_id,
                    o.status,
                    o.reply,
                    o.finish_reason[:32],
                    o.error,
                    o.attempts,
                    o.prompt_tokens,
                    o.completion_tokens,
                    ops.adapt_decimalfield_value(o.cost, 14, 8),
                    o.latency_ms,
                    o.http_status,
                    json.dumps(o.parsed) if o.parsed is not None else None,
                    now if o.finished else None,
                ]
            cursor.execute(_statement(len(group)), params)
