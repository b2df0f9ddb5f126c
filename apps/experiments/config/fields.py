"""Typed values: one `Field` per config key (kind, default, range, source) and `coerce` to check one.

Numbers are normalised so the canonical form does not depend on how they were written: a float key
holds a float (1 -> 1.0), an int key an int (3.0 -> 3). A key backed by an algorithm config
(workers.algorithms) takes its default from there and is range-checked by that config's own
`from_dict`, so the papers' defaults and ranges are stated once.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from apps.experiments.config.errors import close_match, describe
from workers.algorithms.config import ConfigError as AlgorithmConfigError

_UNSET = object()


class Invalid(ValueError):
    """One value's problem, worded for the person who wrote it."""


@dataclasses.dataclass(frozen=True)
class Field:
    kind: str  # float | int | bool | str (stripped, not empty) | text (as written) | choice | special kinds
    default: Any = _UNSET  # _UNSET with `algo`: the algorithm config's default
    low: float | None = None
    high: float | None = None
    open_low: bool = False  # the bound itself is not allowed
    open_high: bool = False
    choices: tuple = ()
    nullable: bool = False
    max_length: int = 0
    algo: tuple[type, str] | None = None  # (AlgorithmConfig subclass, its field name)
    source: str = "ours"  # "paper" or "ours", for the docs
    doc: str = ""

    @property
    def value(self) -> Any:
        """The default."""
        if self.default is not _UNSET:
            return self.default
        assert self.algo is not None, "a field without a default needs an algorithm config"
        cls, name = self.algo
        return next(f for f in dataclasses.fields(cls) if f.name == name).default


def _range_text(field: Field, whole: bool) -> str:
    low, high = field.low, field.high
    fmt = (lambda x: str(int(x))) if whole else (lambda x: f"{x:g}")
    if low is not None and high is not None:
        if not field.open_low and not field.open_high:
            return f" from {fmt(low)} to {fmt(high)}"
        left = "(" if field.open_low else "["
        right = ")" if field.open_high else "]"
        return f" in {left}{fmt(low)}, {fmt(high)}{right}"
    if low is not None:
        return f" {'above' if field.open_low else 'at least'} {fmt(low)}"
    if high is not None:
        return f" {'below' if field.open_high else 'at most'} {fmt(high)}"
    return ""


def expectation(field: Field) -> str:
    if field.low is not None and field.low == field.high and not (field.open_low or field.open_high):
        return f"{field.low:g}" + (f" ({field.doc})" if field.doc else "")
    if field.kind == "float":
        return "a number" + _range_text(field, False)
    if field.kind == "int":
        return "a whole number" + _range_text(field, True)
    if field.kind == "bool":
        return "true or false"
    if field.kind == "choice":
        return "one of " + ", ".join(describe(c) for c in field.choices)
    return "text"


def _in_range(field: Field, value: float) -> bool:
    if field.low is not None and (value < field.low or (field.open_low and value == field.low)):
        return False
    return not (field.high is not None and (value > field.high or (field.open_high and value == field.high)))


_ALGO_MESSAGE = re.compile(r"^\w+\.[\w\[\]'\" ]+ must be (?P<want>.*), got (?P<got>.*)$", re.DOTALL)


def algorithm_problem(error: AlgorithmConfigError) -> str:
    """An algorithm config's message, reworded as "expected …, got …" without its class prefix."""
    text = str(error)
    match = _ALGO_MESSAGE.match(text)
    if match:
        return f"expected {match['want']}, got {match['got']}"
    return re.sub(r"^\w+(\.\w+)?:?\s*", "", text)


def coerce(field: Field, value: Any) -> Any:
    """The value in canonical form, or Invalid with what was expected and what was got."""
    if value is None:
        if field.nullable:
            return None
        raise Invalid(f"expected {expectation(field)}, got null")
    if field.kind in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(
                f"expected {'a number' if field.kind == 'float' else 'a whole number'}, got {describe(value)}"
            )
        if isinstance(value, float) and not math.isfinite(value):  # (a huge int would overflow isfinite)
            raise Invalid(f"expected a finite number, got {describe(value)}")
        if field.kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise Invalid(f"expected {expectation(field)}, got {describe(value)}")
            normal: Any = int(value)
        else:
            normal = float(value)
    elif field.kind == "bool":
        if not isinstance(value, bool):
            raise Invalid(f"expected true or false, got {describe(value)}")
        normal = value
    elif field.kind == "text":
        if not isinstance(value, str):
            raise Invalid(f"expected text, got {describe(value)}")
        normal = value
    elif field.kind == "choice":
        if value not in field.choices:
            words = [c for c in field.choices if isinstance(c, str)]
            raise Invalid(f"expected {expectation(field)}, got {describe(value)}{close_match(value, words)}")
        normal = value
    else:
        if not isinstance(value, str) or not value.strip():
            raise Invalid(f"expected {expectation(field)}, got {describe(value)}")
        if field.max_length and len(value) > field.max_length:
            raise Invalid(f"expected at most {field.max_length} characters, got {len(value)}")
        normal = value.strip()
    if field.algo is not None:
        cls, name = field.algo
        try:
            cls.from_dict({name: normal})
        except AlgorithmConfigError as error:
            raise Invalid(algorithm_problem(error)) from None
    if field.kind in ("float", "int") and not _in_range(field, normal):
        raise Invalid(f"expected {expectation(field)}, got {describe(value)}")
    return normal
