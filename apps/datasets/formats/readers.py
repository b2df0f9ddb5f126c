"""Streaming readers: JSON arrays (ijson), JSON Lines, CSV and parquet, each in bounded memory."""

import codecs
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import ijson
import orjson

from apps.core.json_depth import DepthGuard, NestedTooDeep
from apps.datasets.formats.detect import FORMATS, UTF8_BOM, check_text_head, detect_format, first_content
from apps.datasets.formats.mapping import MAPPERS
from apps.datasets.formats.records import FileFormatError, Record, RecordProblem

Item = Record | RecordProblem


# orjson writes at most this many levels of arrays and objects (and reads at most 1,024).
MAX_DEPTH = 255


def _too_deep(location: str) -> RecordProblem:
    return RecordProblem(location, f"the record nests arrays or objects more than {MAX_DEPTH} levels deep")


def _repeated_key(line: bytes, obj: dict) -> str | None:
    """A key that appears twice in one object of this JSON line, if any: JSON parsers keep only the last
    value, so the record would silently lose the first. Counting `":` pairs rules out nearly every line
    with one scan (0.6 µs for 800 bytes); only a line with more of them than keys (nested objects, or `":`
    inside a string) is parsed again with every key kept. A key written with a space before its colon
    (`"k" :`, which no common JSON writer emits) escapes the count."""
    if line.count(b'":') <= len(obj):
        return None
    found: list[str] = []

    def pairs(items):
        keys = [key for key, _ in items]
        if len(set(keys)) != len(keys):
            found.append(next(key for i, key in enumerate(keys) if key in keys[:i]))
        return dict(items)

    try:
        json.loads(line, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return None  # orjson read it; a difference in strictness is not a repeated key
    return found[0] if found else None


def _size_problem(location: str, size: int, limit: int) -> RecordProblem:
    return RecordProblem(
        location,
        f"the record is {size:,} bytes, over the {limit:,}-byte limit (RETORT_IMPORT_MAX_RECORD_BYTES)",
    )


class _Utf8CheckedReader(io.RawIOBase):
    """Passes bytes through to ijson while checking they are UTF-8, so a bad byte is reported with its
    line instead of as a vague parser error, and that they nest no deeper than MAX_DEPTH (see
    formats/depth.py for why). Also counts bytes for progress."""

    def __init__(self, raw):
        self._raw = raw
        self._depth = DepthGuard(MAX_DEPTH)
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.line = 1
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        try:
            self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            line = self.line + data.count(b"\n", 0, max(exc.start, 0))
            raise FileFormatError(f"line {line}", f"invalid UTF-8 ({exc.reason})") from None
        try:
            self._depth.feed(data, self.line)
        except NestedTooDeep as exc:
            raise FileFormatError(f"line {exc.line}", str(exc)) from None
        self.line += data.count(b"\n")
        self.bytes_read += len(data)
        buffer[: len(data)] = data
        return len(data)


class RecordStream:
    """Iterate to get items; `bytes_read` / `total_bytes` give progress while iterating."""

    def __init__(self, path: Path, fmt: str = "auto", max_record_bytes: int = 1024 * 1024):
        self.path = Path(path)
        if fmt != "auto" and fmt not in FORMATS:
            raise FileFormatError("", f"unknown format {fmt!r}; choose one of auto, {', '.join(FORMATS)}")
        self.format = detect_format(self.path) if fmt == "auto" else fmt
        if fmt != "auto" and self.format != "parquet":
            with open(self.path, "rb") as f:
                check_text_head(f.read(4096))
        self.max_record_bytes = max_record_bytes
        self.total_bytes = self.path.stat().st_size
        self.bytes_read = 0
        self._map = MAPPERS[self.format]

    def __iter__(self) -> Iterator[Item]:
        if self.format == "csv":
            return self._csv()
        if self.format == "parquet":
            return self._parquet()
        with open(self.path, "rb") as f:
            head, _ = first_content(f)
        if head[:1] == b"[":
            if self.format == "jsonl":
                raise FileFormatError("line 1", "the file is a JSON array, not JSON Lines; use the 'alpaca' format")
            return self._json_array()
        if self.format == "alpaca" and head[:1] == b"{":
            raise FileFormatError(
                "line 1", "the 'alpaca' format is a JSON array ('[' first); use 'jsonl' for JSON Lines"
            )
        return self._json_lines()

    # -- JSON Lines --------------------------------------------------------------------------------
    def _lines(self, f) -> Iterator[tuple[int, bytes | None, int]]:
        limit, lineno = self.max_record_bytes, 0
        while True:
            line = f.readline(limit + 1)
            if not line:
                return
            lineno += 1
            if len(line) > limit and not line.endswith(b"\n"):
                size = len(line)
                while chunk := f.readline(1 << 20):
                    size += len(chunk)
                    if chunk.endswith(b"\n"):
                        break
                yield lineno, None, size
            else:
                yield lineno, line, len(line)
            if lineno % 1024 == 0:  # tell() costs as much as parsing a short line
                self.bytes_read = f.tell()

    def _json_lines(self) -> Iterator[Item]:
        with open(self.path, "rb") as f:
            for lineno, line, size in self._lines(f):
                where = f"line {lineno}"
                if line is None:
                    yield _size_problem(where, size, self.max_record_bytes)
                    continue
                if lineno == 1:
                    line = line.removeprefix(b"\xef\xbb\xbf")
                if len(line) < 8 and not line.strip():
                    continue
                try:
                    obj = orjson.loads(line)  # validates UTF-8 itself, without a decoded copy
                except orjson.JSONDecodeError as exc:
                    if line.strip():
                        yield self._line_problem(where, line, exc)
                    continue
                if type(obj) is dict and (key := _repeated_key(line, obj)) is not None:
                    yield RecordProblem(where, f"the key {key!r} appears twice in one object; which value is meant?")
                    continue
                yield self._map(obj, where)

    @staticmethod
    def _line_problem(where: str, line: bytes, exc: Exception) -> RecordProblem:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as bad:
            return RecordProblem(where, f"invalid UTF-8 at byte {bad.start + 1} of the line")
        hint = " (the file may be truncated)" if not line.endswith(b"\n") else ""
        return RecordProblem(where, f"invalid JSON: {exc}{hint}")

    # -- JSON arrays -------------------------------------------------------------------------------
    def _json_array(self) -> Iterator[Item]:
        with open(self.path, "rb") as raw:
            if raw.read(len(UTF8_BOM)) != UTF8_BOM:
                raw.seek(0)
            checked = _Utf8CheckedReader(raw)
            buffered = io.BufferedReader(checked, buffer_size=1 << 16)
            n = 0
            try:
                for obj in ijson.items(buffered, "item", use_float=True):
                    n += 1
                    self.bytes_read = checked.bytes_read
                    where = f"record {n}"
                    try:
                        size = len(orjson.dumps(obj))
                    except orjson.JSONEncodeError:
                        yield _too_deep(where)
                        continue
                    if size > self.max_record_bytes:
                        yield _size_problem(where, size, self.max_record_bytes)
                        continue
                    yield self._map(obj, where)
            except ijson.IncompleteJSONError as exc:
                near = f"record {n + 1} (near line {checked.line})"
                if "premature EOF" in str(exc) or "Incomplete" in str(exc):
                    raise FileFormatError(near, "the file ends in the middle of this record (truncated?)") from None
                raise FileFormatError(near, f"invalid JSON: {str(exc).splitlines()[0]}") from None
            except ijson.JSONError as exc:
                near = f"record {n + 1} (near line {checked.line})"
                raise FileFormatError(near, f"invalid JSON: {str(exc).splitlines()[0]}") from None
            except UnicodeDecodeError as exc:
                raise FileFormatError(f"record {n + 1}", f"invalid UTF-8 ({exc.reason})") from None

    # -- CSV ---------------------------------------------------------------------------------------
    def _csv(self) -> Iterator[Item]:
        csv.field_size_limit(self.max_record_bytes)
        delimiter = "\t" if self.path.suffix.lower() == ".tsv" else ","
        with open(self.path, "rb") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
            reader = csv.reader(text, delimiter=delimiter, strict=True)
            try:
                header = next(reader, None)
            except UnicodeDecodeError as exc:
                raise FileFormatError("line 1", f"invalid UTF-8 ({exc.reason})") from None
            if not header:
                raise FileFormatError("line 1", "the CSV file has no header row")
            columns = [c.strip().lower() for c in header]
            if "instruction" not in columns:
                raise FileFormatError(
                    "line 1", f"the header has no 'instruction' column (columns: {', '.join(columns) or 'none'})"
                )
            if len(set(columns)) != len(columns):
                raise FileFormatError("line 1", "the header repeats a column name")
            row_no = 0
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError as exc:
                    raise FileFormatError(f"near line {reader.line_num + 1}", f"invalid UTF-8 ({exc.reason})") from None
                except csv.Error as exc:
                    where = f"line {reader.line_num}"
                    if "field larger than field limit" in str(exc):
                        raise FileFormatError(
                            where,
                            f"a field is over the {self.max_record_bytes:,}-byte limit "
                            "(RETORT_IMPORT_MAX_RECORD_BYTES)",
                        ) from None
                    if "unexpected end of data" in str(exc):
                        raise FileFormatError(
                            where, "a quoted field is still open at the end of the file (truncated?)"
                        ) from None
                    raise FileFormatError(where, f"malformed CSV: {exc}") from None
                row_no += 1
                if row_no % 1000 == 0:
                    self.bytes_read = raw.tell()
                where = f"line {reader.line_num}"
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(columns):
                    yield RecordProblem(where, f"the row has {len(row)} fields, the header has {len(columns)}")
                    continue
                yield self._map(dict(zip(columns, row, strict=True)), where)

    # -- parquet -----------------------------------------------------------------------------------
    def _parquet(self) -> Iterator[Item]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self.path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise FileFormatError("", f"not a readable parquet file: {exc}") from None
        names = pf.schema_arrow.names
        if "instruction" not in names:
            raise FileFormatError("", f"the parquet file has no 'instruction' column (columns: {', '.join(names)})")
        total = max(pf.metadata.num_rows, 1)
        row_no = 0
        try:
            for batch in pf.iter_batches(batch_size=8192):
                for obj in batch.to_pylist():
                    row_no += 1
                    where = f"row {row_no}"
                    size = len(orjson.dumps(obj, default=str))
                    if size > self.max_record_bytes:
                        yield _size_problem(where, size, self.max_record_bytes)
                        continue
                    yield self._map(obj, where)
                self.bytes_read = int(self.total_bytes * row_no / total)
        except (OSError, ValueError) as exc:
            raise FileFormatError(f"row {row_no + 1}", f"cannot read the parquet data: {exc}") from None


def read_records(path: Path, fmt: str = "auto", max_record_bytes: int = 1024 * 1024) -> RecordStream:
    return RecordStream(path, fmt, max_record_bytes)
