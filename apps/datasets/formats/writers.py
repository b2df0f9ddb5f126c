"""Streaming writers for the formats Retort exports. Pure Python (orjson, pyarrow): no Django here.

Each writer takes an iterable of export records (plain dicts, below) and writes them to a binary file as
it goes, in constant memory: the JSON formats join a batch of encoded lines before each write, parquet
writes one row group per batch. The file's sha256 and size are taken while it is written, so a manifest
never reads the file back.

An export record:
    instruction (str, not empty), input, output, system, category, label, rationale, kind (str)
    turns: the conversation after the first answer, [{"role": "user"|"assistant", "content": str}]
    provenance, scores, review: dicts (the optional per-record fields), or absent

The chat formats (ShareGPT, OpenAI) need an answer: a record whose output is empty is skipped and counted
under `skipped["no answer"]`. The OpenAI file holds nothing but `messages` on each line, as fine-tuning
APIs expect; the optional fields then go to a sidecar file, one line per written record, in the same order.
"""

import hashlib
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import orjson

EXPORT_FORMATS = ("alpaca", "sharegpt", "openai", "parquet")
SUFFIX = {"alpaca": ".json", "sharegpt": ".json", "openai": ".jsonl", "parquet": ".parquet"}
OPTIONAL_FIELDS = ("provenance", "scores", "review")
BATCH = 2000  # records between progress reports
NO_ANSWER = "no answer"

# The nested fields' parquet types: fixed, so every row group has the same schema and `datasets` reads
# them as dicts. Keys a record's dict lacks are null; keys the schema lacks are left out.
_STRUCT_FIELDS = {
    "provenance": (
        ("dataset", "string"),
        ("instruction_id", "int64"),
        ("origin", "string"),
        ("lineage", "string"),
        ("seed_id", "int64"),
        ("experiment", "string"),
        ("round", "int64"),
    ),
    "scores": (
        ("judge_model", "string"),
        ("teacher_score", "float64"),
        ("student_score", "float64"),
        ("gap", "float64"),
        ("verdict", "string"),
        ("contested", "bool"),
        ("experiment", "string"),
        ("round", "int64"),
    ),
    "review": (
        ("kind", "string"),
        ("decision", "string"),
        ("reviewer", "string"),
        ("edited", "bool"),
        ("automatic", "bool"),
    ),
}
_TEXT_COLUMNS = ("instruction", "input", "output", "category", "label")
_OPTIONAL_TEXT_COLUMNS = ("system", "rationale", "kind")


@dataclass
class WriteStats:
    """What a writer wrote: records, skipped records by reason, bytes and the file's sha256."""

    format: str
    written: int = 0
    skipped: Counter = field(default_factory=Counter)
    bytes: int = 0
    sha256: str = ""

    def as_dict(self) -> dict:
        return {"format": self.format, "records": self.written, "skipped": dict(self.skipped), "bytes": self.bytes}


class HashingFile(io.RawIOBase):
    """A write-only file that hashes and counts what passes through it to the real one."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._raw.write(data)
        return len(data)

    def flush(self) -> None:
        self._raw.flush()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def prompt_text(record: dict) -> str:
    """The user's message: the instruction, then its input after a blank line (as the trainer sees it)."""
    instruction, input_ = record["instruction"].strip(), (record.get("input") or "").strip()
    return f"{instruction}\n\n{input_}" if input_ else instruction


def _extras(record: dict, keys: Iterable[str]) -> dict:
    return {key: record[key] for key in keys if record.get(key) not in (None, "", [], {})}


# --- records in each shape ------------------------------------------------------------------------------
_ALPACA_EXTRA = ("system", "category", "label", "rationale", "kind", "turns", *OPTIONAL_FIELDS)
_SHAREGPT_EXTRA = ("category", "label", "rationale", "kind", *OPTIONAL_FIELDS)
_SPEAKER = {"user": "human", "assistant": "gpt"}


def alpaca_record(record: dict) -> dict:
    out = {"instruction": record["instruction"], "input": record.get("input") or "", "output": record.get("output")}
    out["output"] = out["output"] or ""
    out.update(_extras(record, _ALPACA_EXTRA))
    return out


def chat_messages(record: dict) -> list[dict] | None:
    """system?, user, assistant, then the later turns; None when the record has no answer."""
    if not (record.get("output") or "").strip():
        return None
    messages = [{"role": "system", "content": record["system"]}] if record.get("system") else []
    messages.append({"role": "user", "content": prompt_text(record)})
    messages.append({"role": "assistant", "content": record["output"]})
    messages += [{"role": t["role"], "content": t["content"]} for t in record.get("turns") or ()]
    return messages


def sharegpt_record(record: dict) -> dict | None:
    messages = chat_messages(record)
    if messages is None:
        return None
    turns = [{"from": _SPEAKER.get(m["role"], m["role"]), "value": m["content"]} for m in messages]
    return {"conversations": turns, **_extras(record, _SHAREGPT_EXTRA)}


def openai_record(record: dict) -> dict | None:
    messages = chat_messages(record)
    return None if messages is None else {"messages": messages}


# --- the JSON writers -----------------------------------------------------------------------------------
Progress = Callable[[int], None]


def _encoded(
    records: Iterable[dict],
    shape: Callable[[dict], dict | None],
    stats: WriteStats,
    progress: Progress | None,
    sidecar: BinaryIO | None = None,
) -> Iterator[bytes]:
    """Each shaped record encoded, skipped ones counted; progress every BATCH records read."""
    dumps, seen = orjson.dumps, 0
    for record in records:
        seen += 1
        if progress and seen % BATCH == 0:
            progress(seen)
        shaped = shape(record)
        if shaped is None:
            stats.skipped[NO_ANSWER] += 1
            continue
        stats.written += 1
        if sidecar is not None:
            sidecar.write(dumps(_extras(record, OPTIONAL_FIELDS), option=orjson.OPT_APPEND_NEWLINE))
        yield dumps(shaped)
    if progress:
        progress(seen)


def json_array_chunks(
    records: Iterable[dict], shape: Callable[[dict], dict | None], stats: WriteStats, progress: Progress | None = None
) -> Iterator[bytes]:
    """A JSON array, one record a line: '[', records joined by ',\n', ']'. Valid JSON at the end only."""
    yield b"[\n"
    separator = b""
    for line in _encoded(records, shape, stats, progress):
        yield separator
        yield line
        separator = b",\n"
    yield b"\n]\n"


def json_lines_chunks(
    records: Iterable[dict],
    shape: Callable[[dict], dict | None],
    stats: WriteStats,
    progress: Progress | None = None,
    sidecar: BinaryIO | None = None,
) -> Iterator[bytes]:
    """JSON Lines: one object a line, each line ending in a newline. With `sidecar`, each written record's
    optional fields go there on the line of the same number."""
    newline = b"\n"
    for line in _encoded(records, shape, stats, progress, sidecar):
        yield line
        yield newline


SHAPES = {"alpaca": alpaca_record, "sharegpt": sharegpt_record, "openai": openai_record}


# --- parquet ---------------------------------------------------------------------------------------------
def parquet_schema(fields: Iterable[str] = ()):
    """Six text columns always; system, rationale, kind, turns and the optional dicts when asked for."""
    import pyarrow as pa

    wanted = set(fields)
    columns = [pa.field(name, pa.string(), nullable=False) for name in _TEXT_COLUMNS]
    columns += [pa.field(name, pa.string()) for name in _OPTIONAL_TEXT_COLUMNS if name in wanted]
    if "turns" in wanted:
        columns.append(pa.field("turns", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))))
    for name in OPTIONAL_FIELDS:
        if name in wanted:
            columns.append(pa.field(name, pa.struct([(key, kind) for key, kind in _STRUCT_FIELDS[name]])))
    return pa.schema(columns, metadata={b"retort.format": b"export-v1"})


def _struct_value(value: dict | None, keys: tuple) -> dict | None:
    if not value:
        return None
    return {key: value.get(key) for key, _ in keys}


def _parquet_batch(rows: list[dict], schema):
    import pyarrow as pa

    arrays = []
    for column in schema:
        name = column.name
        if name in _TEXT_COLUMNS:
            values = [row.get(name) or "" for row in rows]
        elif name in OPTIONAL_FIELDS:
            keys = _STRUCT_FIELDS[name]
            values = [_struct_value(row.get(name), keys) for row in rows]
        elif name == "turns":
            values = [row.get("turns") or None for row in rows]
        else:
            values = [row.get(name) or None for row in rows]
        arrays.append(pa.array(values, type=column.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def write_parquet(
    records: Iterable[dict],
    out: BinaryIO,
    stats: WriteStats,
    *,
    fields: Iterable[str] = (),
    progress: Progress | None = None,
    row_group: int = 5000,
) -> None:
    import pyarrow.parquet as pq

    schema = parquet_schema(fields)
    with pq.ParquetWriter(out, schema, compression="zstd") as writer:
        rows: list[dict] = []
        for record in records:
            rows.append(record)
            if len(rows) >= row_group:
                writer.write_batch(_parquet_batch(rows, schema), row_group_size=row_group)
                stats.written += len(rows)
                rows = []
                if progress:
                    progress(stats.written)
        if rows or stats.written == 0:
            writer.write_batch(_parquet_batch(rows, schema), row_group_size=row_group)
            stats.written += len(rows)
        if progress:
            progress(stats.written)


# --- one entry point -------------------------------------------------------------------------------------
def write_records(
    fmt: str,
    records: Iterable[dict],
    out: BinaryIO,
    *,
    fields: Iterable[str] = (),
    progress: Progress | None = None,
    sidecar: BinaryIO | None = None,
) -> WriteStats:
    """Write `records` to the binary file `out` in `fmt`; returns what was written, with its sha256.
    `fields` names the optional columns parquet should have; `sidecar` (openai only) receives the
    optional per-record fields."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    stats = WriteStats(format=fmt)
    sink = HashingFile(out)
    if fmt == "parquet":
        write_parquet(records, sink, stats, fields=fields, progress=progress)
    else:
        chunks = (
            json_lines_chunks(records, SHAPES[fmt], stats, progress, sidecar)
            if fmt == "openai"
            else json_array_chunks(records, SHAPES[fmt], stats, progress)
        )
        buffered = io.BufferedWriter(sink, buffer_size=1 << 20)
        write = buffered.write
        for chunk in chunks:
            write(chunk)
        buffered.flush()
        buffered.detach()
    sink.flush()
    stats.bytes, stats.sha256 = sink.size, sink.hexdigest()
    return stats
