"""Task resampling to target ratios (TAPIR), with the ratios of Alibaba EasyDistill's TAPIR-derived sampler.

For a total N, each category c gets target_c = int(N * ratio_c) items: drawn without replacement when it
has more, repeated as whole copies and then topped up without replacement when it has fewer. Categories
with no items are skipped and reported. Each category draws from its own random stream, seeded by the
experiment's seed and the category's name, so editing one category's ratio never reshuffles another's.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from workers.algorithms.config import AlgorithmConfig, ConfigError, check_int
from workers.algorithms.task_vocabulary import TASK_CATEGORIES, UnknownTaskLabel, check_task_categories

__all__ = [
    "TAPIR_TASK_RATIOS",
    "TASK_CATEGORIES",
    "CategoryDraw",
    "Resampled",
    "ResamplingConfig",
    "UnknownTaskLabel",
    "resample_by_task",
]

_MAJOR = {"Math": 0.167, "Reasoning": 0.167, "Code Generation": 0.083, "Code Debug": 0.083, "Others": 0.041}
_MINOR = 0.017
# Keyed by the task vocabulary, every category with a ratio: a label the classifier can give is never
# missing from the table.
TAPIR_TASK_RATIOS: Mapping[str, float] = MappingProxyType({c: _MAJOR.get(c, _MINOR) for c in TASK_CATEGORIES})


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResamplingConfig(AlgorithmConfig):
    """ratios: category -> share of N (editable per experiment; every key a category of the task
    vocabulary); total: N (None = the number of items)."""

    ratios: Mapping[str, float] = dataclasses.field(default_factory=lambda: dict(TAPIR_TASK_RATIOS))
    total: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.ratios, Mapping) or not self.ratios:
            raise ConfigError("ResamplingConfig.ratios must be a non-empty mapping of category to ratio")
        unknown = [name for name in self.ratios if name not in TASK_CATEGORIES]
        if unknown:
            raise ConfigError(
                f"ResamplingConfig.ratios names categories outside the task vocabulary: {', '.join(map(repr, unknown))}"
            )
        for name, ratio in self.ratios.items():
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 <= ratio <= 1:
                raise ConfigError(f"ResamplingConfig.ratios[{name!r}] must be a number in [0, 1], got {ratio!r}")
        if self.total is not None:
            check_int(self, "total", self.total, 0)
        check_int(self, "seed", self.seed, 0)


@dataclasses.dataclass(frozen=True)
class CategoryDraw:
    available: int
    target: int
    drawn: int  # target, or 0 for an empty category


@dataclasses.dataclass(frozen=True)
class Resampled:
    indices: list[int]  # into the labels; shuffled, with repeats where a category was upsampled
    categories: dict[str, CategoryDraw]
    short: list[str]  # categories with fewer items than their target (upsampled by repetition)
    empty: list[str]  # categories with a target but no items: skipped
    missing: int  # items the empty categories would have contributed
    unlisted: dict[str, int]  # categories the config leaves without a ratio (ratio 0): never drawn


def _stream(seed: int, category: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(category.encode("utf-8"))])


def resample_by_task(labels: Sequence[str], config: ResamplingConfig | None = None) -> Resampled:
    """Indices of a resampled set whose category counts are int(N * ratio) for every non-empty category.

    Every label must be a category of the task vocabulary (map other label sets with to_task_category):
    an unknown label raises UnknownTaskLabel rather than being left out of the draw."""
    config = config or ResamplingConfig()
    check_task_categories(labels, "task labels")
    total = len(labels) if config.total is None else config.total
    by_category: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_category.setdefault(label, []).append(index)
    chosen: list[int] = []
    categories: dict[str, CategoryDraw] = {}
    short: list[str] = []
    empty: list[str] = []
    missing = 0
    for category in sorted(config.ratios):
        target = int(total * config.ratios[category])  # the sampler's rule, float rounding included
        members = by_category.get(category, [])
        if not members:
            if target:
                empty.append(category)
                missing += target
            categories[category] = CategoryDraw(0, target, 0)
            continue
        rng = _stream(config.seed, category)
        if target <= len(members):
            picks = [members[i] for i in rng.choice(len(members), size=target, replace=False)]
        else:
            short.append(category)
            copies, rest = divmod(target, len(members))
            picks = members * copies + [members[i] for i in rng.choice(len(members), size=rest, replace=False)]
        chosen += picks
        categories[category] = CategoryDraw(len(members), target, len(picks))
    order = np.random.default_rng([config.seed, 0x5EED]).permutation(len(chosen))
    unlisted = {name: len(items) for name, items in sorted(by_category.items()) if name not in config.ratios}
    return Resampled(
        indices=[chosen[i] for i in order],
        categories=categories,
        short=short,
        empty=empty,
        missing=missing,
        unlisted=unlisted,
    )
