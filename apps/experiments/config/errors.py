"""ConfigError and the collector that gathers every problem of a config before raising one error."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from apps.core.errors import RetortError

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """("datasets", 1, "weight") -> "datasets[1].weight"."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def describe(value: Any) -> str:
    """A value as the person wrote it, short enough for one line of an error."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        try:
            return repr(value)
        except ValueError:  # an int past Python's 4,300-digit conversion limit (YAML reads hex without one)
            return f"a {value.bit_length():,}-bit number"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 60 else text[:57] + '…"'
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def close_match(word: Any, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """' (did you mean "x"?)' for the nearest allowed word, or "" when none is near. Names that share a
    prefix ("demo-…") look alike to difflib, so name lookups ask for a higher cutoff."""
    if not isinstance(word, str):
        return ""
    choices = list(choices)
    lowered = {choice.lower(): choice for choice in choices}
    if word.lower() in lowered:
        return f' (did you mean "{lowered[word.lower()]}"?)'
    found = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return f' (did you mean "{found[0]}"?)' if found else ""


class ConfigError(RetortError):
    """An experiment config that cannot be used. The message lists every problem, one per line, as
    "path: problem"; `problems` holds the same pairs for forms and APIs."""

    def __init__(self, problems: list[tuple[str, str]], *, filename: str = ""):
        self.problems = list(problems)
        self.filename = filename
        super().__init__("\n".join(f"{path}: {problem}" if path else problem for path, problem in self.problems))


class Problems:
    """Collects (path, problem) pairs; knows the YAML line of each key when the source was text."""

    def __init__(self, marks: Mapping[Path, int] | None = None, *, filename: str = ""):
        self.marks = dict(marks or {})
        self.filename = filename
        self.items: list[tuple[str, str]] = []
        # Things that are allowed but have no effect (a role or gate this recipe does not use): said, not
        # refused, so a config written for several recipes still loads.
        self.notes: list[tuple[str, str]] = []

    def line(self, path: Path) -> int | None:
        """The line of the key at `path`, or of its nearest written parent (for a missing key)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.marks:
                return self.marks[path[:end]]
        return None

    def add(self, path: Path, problem: str) -> None:
        line = self.line(path)
        if line is not None:
            problem = f"{problem} (line {line})"
        self.items.append((format_path(path) or self.filename or "config", problem))

    def note(self, path: Path, text: str) -> None:
        line = self.line(path)
        self.notes.append((format_path(path), f"{text} (line {line})" if line is not None else text))

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items, filename=self.filename)

    def check_keys(self, mapping: Mapping, path: Path, allowed: Iterable[str], *, hint=None) -> None:
        """Report keys of `mapping` outside `allowed`, with the nearest allowed key as a suggestion.
        `hint(key)` may explain a known key that does not belong here (e.g. another recipe's)."""
        allowed = list(allowed)
        for key in mapping:
            if not isinstance(key, str):
                self.add((*path, str(key)), f"keys must be text, got {describe(key)}")
            elif key not in allowed:
                extra = hint(key) if hint else ""
                suggestion = close_match(key, allowed)
                if suggestion:  # the likely fix says enough; otherwise list what is allowed here
                    self.add((*path, key), f"unknown key{suggestion}{extra}")
                    continue
                where = f"{format_path(path)} takes" if path else "allowed keys are"
                self.add((*path, key), f"unknown key{extra}; {where} {', '.join(allowed)}")
