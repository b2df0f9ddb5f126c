"""Guess a file's format from its name and first bytes."""

from pathlib import Path

import orjson

from apps.datasets.formats.records import FileFormatError

FORMATS = ("alpaca", "jsonl", "sharegpt", "openai", "csv", "parquet")
_PEEK_BYTES = 1 << 20
UTF8_BOM = b"\xef\xbb\xbf"
# Files that are no UTF-8 text at all, told by their first bytes. Nothing is ever unpacked: an archive
# may hold anything (or expand a thousandfold), so the person importing it decides what goes in.
_PACKED = (
    (b"\x1f\x8b", "gzip-compressed"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\xfd7zXZ\x00", "xz-compressed"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
)


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 without a byte order mark: text in a Latin script has a NUL in every other byte."""
    sample = head[:4096]
    if len(sample) < 4:
        return False
    half = len(sample) // 2
    return max(sample[0::2].count(0), sample[1::2].count(0)) > 0.4 * half


def check_text_head(head: bytes) -> None:
    """Refuse a file that is compressed, an archive or UTF-16/32 text, saying so, instead of reporting the
    parse errors its bytes would cause."""
    for magic, what in _PACKED:
        if head.startswith(magic):
            raise FileFormatError(
                "", f"the file is {what}; Retort reads uncompressed files only: decompress it and import the result"
            )
    if head.startswith(b"BZh") and head[4:10] == b"1AY&SY":
        raise FileFormatError(
            "",
            "the file is bzip2-compressed; Retort reads uncompressed files only: decompress it and import the result",
        )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(head):
        raise FileFormatError("line 1", "the file is UTF-16 (or UTF-32) text; save it as UTF-8 and import that")


def first_content(f) -> tuple[bytes, int]:
    """Up to 1 MiB from the first byte that is not blank (a UTF-8 BOM and any number of blank lines
    skipped), and the line it is on."""
    head = f.read(_PEEK_BYTES).removeprefix(UTF8_BOM)
    line = 1
    while head:
        body = head.lstrip()
        line += head.count(b"\n", 0, len(head) - len(body))
        if body:
            return body + f.read(_PEEK_BYTES - len(body)), line
        head = f.read(_PEEK_BYTES)
    return b"", line


def _first_line_problem(first_line: bytes, error: orjson.JSONDecodeError) -> str:
    try:
        first_line.decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"invalid UTF-8 at byte {bad.start + 1} of the line"
    if not first_line.rstrip().endswith(b"}"):
        return (
            f"the first line is not a complete JSON object ({error}). Retort reads a JSON array of records or "
            "JSON Lines (one object per line); a single pretty-printed object is neither"
        )
    return f"invalid JSON: {error}"


def _first_object_keys(head: bytes) -> set[str] | None:
    """Keys of the first JSON object in `head`, if one starts and ends within it."""
    start = head.find(b"{")
    depth, in_str, esc = 0, False, False
    for i in range(start, len(head)) if start >= 0 else ():
        c = head[i]
        if in_str:
            if esc:
                esc = False
            elif c == 0x5C:
                esc = True
            elif c == 0x22:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c == 0x7B:
            depth += 1
        elif c == 0x7D:
            depth -= 1
            if depth == 0:
                try:
                    obj = orjson.loads(head[start : i + 1])
                except orjson.JSONDecodeError:
                    return None
                return set(obj) if isinstance(obj, dict) else None
    return None


def _kind_from_keys(keys: set[str] | None, jsonl: bool) -> str:
    if keys and "conversations" in keys:
        return "sharegpt"
    if keys and "messages" in keys:
        return "openai"
    return "jsonl" if jsonl else "alpaca"


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    with open(path, "rb") as f:
        head = f.read(_PEEK_BYTES)
    if head.startswith(b"PAR1") or suffix == ".parquet":
        return "parquet"
    check_text_head(head)
    if suffix in {".csv", ".tsv"}:
        return "csv"
    with open(path, "rb") as f:
        body, line = first_content(f)
    if not body:
        raise FileFormatError("", "the file is empty")
    if body[:1] == b"[":
        return _kind_from_keys(_first_object_keys(body), jsonl=False)
    if body[:1] == b"{":
        if b"\n" not in body and len(body) >= _PEEK_BYTES:
            return "jsonl"  # a first record over 1 MiB: the reader reports it against the size limit
        first_line = body.split(b"\n", 1)[0].strip()
        try:
            obj = orjson.loads(first_line)
        except orjson.JSONDecodeError as error:
            raise FileFormatError(f"line {line}", _first_line_problem(first_line, error)) from None
        return _kind_from_keys(set(obj) if isinstance(obj, dict) else None, jsonl=True)
    if suffix in {".json", ".jsonl", ".ndjson"}:
        raise FileFormatError(f"line {line}", "a JSON file must start with '[' (an array) or '{' (JSON Lines)")
    raise FileFormatError("", f"cannot tell the format of {path.name!r}; pass --format ({', '.join(FORMATS)})")
