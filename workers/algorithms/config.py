"""Defaults as frozen dataclasses that an experiment's config (a dict from YAML) can override.

Every algorithm here takes one of these configs. Building one from a dict rejects unknown keys with a message
that names the config and lists the allowed keys, so a typo in a recipe fails loudly instead of silently
running with the paper's default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Self


class ConfigError(ValueError):
    """An experiment config names an unknown key or gives a value out of range."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class AlgorithmConfig:
    """Base for the algorithm configs: `from_dict` for recipes, `to_dict` for manifests and checkpoints."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None = None) -> Self:
        data = dict(data or {})
        allowed = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{cls.__name__}: unknown key(s) {', '.join(map(repr, unknown))}; allowed keys are {', '.join(allowed)}"
            )
        try:
            return cls(**data)
        except (TypeError, ValueError) as error:
            if isinstance(error, ConfigError):
                raise
            raise ConfigError(f"{cls.__name__}: {error}") from error

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_range(owner: object, name: str, value: float, low: float, high: float) -> None:
    """Raise ConfigError unless low <= value <= high (and value is a real number)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{type(owner).__name__}.{name} must be a number in [{low}, {high}], got {value!r}")


def check_int(owner: object, name: str, value: int, low: int) -> None:
    """Raise ConfigError unless value is an int >= low."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{type(owner).__name__}.{name} must be an integer >= {low}, got {value!r}")
