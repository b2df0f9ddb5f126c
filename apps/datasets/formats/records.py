"""The record every reader produces, the problems it reports, and the duplicate key."""

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(slots=True)
class Record:
    text: str
    input: str = ""
    reference_output: str = ""
    gold_label: str = ""
    task_category: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # Further turns of a multi-turn conversation (after the first user message), part of the identity.
    turns: list[dict[str, str]] | None = None
    location: str = ""


@dataclass(frozen=True, slots=True)
class RecordProblem:
    location: str  # "line 17", "record 4", "row 120"
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


class FileFormatError(Exception):
    """The file cannot be read on from this point; nothing from it is imported."""

    def __init__(self, location: str, reason: str):
        super().__init__(f"{location}: {reason}" if location else reason)
        self.location = location
        self.reason = reason


def _norm(value: str) -> str:
    return " ".join(value.split())


def content_hash(text: str, input: str = "", turns: list[dict[str, str]] | None = None) -> str:
    """SHA-256 of what makes an instruction itself: its text and input with whitespace runs collapsed,
    plus, for a multi-turn conversation, every later turn. Reference outputs are not part of it, so the
    same instruction answered twice counts as a duplicate."""
    parts: list[Any] = [_norm(text), _norm(input)]
    if turns:
        parts.append([[t["role"], _norm(t["content"])] for t in turns])
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()
