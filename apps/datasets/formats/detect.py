"""Guess a file's format from its name and first bytes."""

from pathlib import Path

import orjson

from apps.datasets.formats.records import FileFormatError

FORMATS = ("alpaca", "jsonl", "sharegpt", "openai", "csv", "parquet")
_PEEK_BYTES = 1 << 20


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
    if suffix in {".csv", ".tsv"}:
        return "csv"
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not body:
        raise FileFormatError("", "the file is empty")
    if body[:1] == b"[":
        return _kind_from_keys(_first_object_keys(body), jsonl=False)
    if body[:1] == b"{":
        first_line = body.split(b"\n", 1)[0].strip()
        try:
            obj = orjson.loads(first_line)
        except orjson.JSONDecodeError:
            raise FileFormatError(
                "line 1",
                "the first line is not a complete JSON object. Retort reads a JSON array of records or "
                "JSON Lines (one object per line); a single pretty-printed object is neither",
            ) from None
        return _kind_from_keys(set(obj) if isinstance(obj, dict) else None, jsonl=True)
    if suffix in {".json", ".jsonl", ".ndjson"}:
        raise FileFormatError("line 1", "a JSON file must start with '[' (an array) or '{' (JSON Lines)")
    raise FileFormatError("", f"cannot tell the format of {path.name!r}; pass --format ({', '.join(FORMATS)})")
