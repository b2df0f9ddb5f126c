"""Config text (YAML or JSON) to plain data, with the line of every key for error messages."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from apps.experiments.config.errors import ConfigError, Path, Problems, format_path


class _Loader(yaml.SafeLoader):
    """safe_load, but reading 1e-4 as a number: YAML 1.1 (PyYAML) needs a dot in a float, so
    `learning_rate: 2e-4` would otherwise arrive as the string "2e-4", unlike JSON and YAML 1.2."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


MAX_BYTES = 1_000_000
MAX_NODES = 100_000  # with aliases expanded: a "billion laughs" document stops here, not in memory
# The YAML and JSON readers recurse once per level; past Python's limit they raise RecursionError.
TOO_DEEP = "lists and mappings are nested too deeply (a config needs a few levels)"


class _TooLarge(Exception):
    pass


def _walk(node: yaml.Node, path: Path, marks: dict[Path, int], problems: Problems, budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            where = (*path, key)
            if key in seen:
                # PyYAML keeps the last value silently; a repeated key is almost always a mistake.
                second = key_node.start_mark.line + 1
                problems.items.append((format_path(where), f"appears twice (lines {marks[where]} and {second})"))
                continue
            seen.add(key)
            marks[where] = key_node.start_mark.line + 1
            _walk(value_node, where, marks, problems, budget)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            marks[(*path, index)] = item.start_mark.line + 1
            _walk(item, (*path, index), marks, problems, budget)


def _syntax_problem(error: yaml.YAMLError, source: str) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    what = getattr(error, "problem", None) or str(error).splitlines()[0]
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    context, start = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and start is not None and mark is not None and start.line != mark.line:
        # what was open when the reader gave up, and where it began: an unclosed quote or bracket
        where += f", {context} (line {start.line + 1}, column {start.column + 1})"
    if isinstance(error, yaml.reader.ReaderError):  # a character YAML does not allow (a NUL, a control)
        what = f"unacceptable character #x{error.character:04x}: special characters are not allowed"
        where = f" (line {source.count(chr(10), 0, error.position) + 1})"
    return f"not valid YAML: {what}{where}"


def load_text(source: str | bytes, *, filename: str = "") -> tuple[Any, dict[Path, int]]:
    """Parse YAML (or JSON, which YAML reads too; a .json file is read as strict JSON) and return the
    data and the 1-based line of each key path. Raises ConfigError for unreadable text."""
    where = filename or "config"
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError([(where, f"not UTF-8 text (byte {error.start})")], filename=filename) from None
    if len(source) > MAX_BYTES:
        raise ConfigError(
            [(where, f"{len(source):,} characters; a config has at most {MAX_BYTES:,}")], filename=filename
        )
    if filename.lower().endswith(".json"):
        try:
            data = json.loads(source)
        except json.JSONDecodeError as error:
            problem = f"not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
            raise ConfigError([(where, problem)], filename=filename) from None
        except RecursionError:
            raise ConfigError([(where, TOO_DEEP)], filename=filename) from None
    problems = Problems(filename=filename)
    marks: dict[Path, int] = {}
    loader = None
    try:
        loader = _Loader(source)  # its reader refuses characters YAML does not allow, here already
        node = loader.get_single_node()
        yaml_data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        if filename.lower().endswith(".json"):
            return data, marks  # valid JSON that YAML 1.1 will not read: no line numbers, nothing else lost
        raise ConfigError([(where, _syntax_problem(error, source))], filename=filename) from None
    except RecursionError:
        raise ConfigError([(where, TOO_DEEP)], filename=filename) from None
    except ValueError as error:  # int() of a number with more digits than Python converts (4,300)
        raise ConfigError([(where, f"not valid YAML: {str(error).split(';')[0]}")], filename=filename) from None
    finally:
        if loader is not None:
            loader.dispose()
    if node is not None:
        try:
            _walk(node, (), marks, problems, [MAX_NODES])
        except _TooLarge:
            raise ConfigError(
                [(where, f"more than {MAX_NODES:,} values (aliases expanded)")], filename=filename
            ) from None
        except RecursionError:
            raise ConfigError([(where, TOO_DEEP)], filename=filename) from None
    problems.raise_if_any()
    return (data if filename.lower().endswith(".json") else yaml_data), marks
