"""Each recipe's parameters: the table of keys with their defaults and sources, and their validation.

Keys that an algorithm in workers.algorithms consumes are backed by its config class (`algo=`): the
default is read from that dataclass and the value is range-checked by its `from_dict`. Bounds written
here are only the ones those configs leave open (a gap threshold beyond the judge's 1-10 scale, a round
count nobody could pay for).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from typing import Any

from apps.experiments.config.errors import Path, Problems, close_match, describe
from apps.experiments.config.fields import Field, Invalid, algorithm_problem, coerce
from workers.algorithms.config import ConfigError as AlgorithmConfigError
from workers.algorithms.curriculum import CurriculumConfig
from workers.algorithms.discrimination import DiscriminationConfig
from workers.algorithms.mos.scorer import MoSConfig
from workers.algorithms.novelty import NoveltyConfig
from workers.algorithms.resampling import TAPIR_TASK_RATIOS, ResamplingConfig
from workers.algorithms.step_by_step.examples import StepByStepConfig
from workers.algorithms.step_by_step.rationales import Dataset as RationaleDataset
from workers.algorithms.task_vocabulary import TASK_CATEGORIES
from workers.llm.prompts import get_template

RATIO_TOLERANCE = 1e-6
MAX_ROUNDS = 100
GAP_SCALE = 9.0  # the judge scores 1-10, so a teacher-student gap lies in [-9, 9]

DATASET_KINDS: tuple[str, ...] = typing.get_args(RationaleDataset)
FEW_SHOT_SETS: tuple[str, ...] = tuple(get_template("rationale_fewshot").examples)
# The rationale prompt's example set that suits each dataset kind (ours).
DEFAULT_FEW_SHOT = {
    "cqa": "multiple_choice",
    "svamp": "arithmetic",
    "anli": "nli",
    "esnli": "nli",
    "generic": "generic",
}


def _rounds(default: Any = None, **kw) -> Field:
    if default is None:
        return Field("int", low=1, high=MAX_ROUNDS, doc="rounds of the loop", **kw)
    return Field("int", default, low=1, high=MAX_ROUNDS, doc="rounds of the loop", **kw)


# Step-by-step and Mixture-of-Skills are one pass over their data: a second round would have no stages.
_ONE_PASS = Field("int", 1, low=1, high=1, doc="1: the method is one pass over its data")


def _common(rounds: Field) -> dict[str, Field]:
    return {
        "rounds": rounds,
        "batch_size": Field("int", 256, low=1, high=100_000, doc="items per engine batch task"),
        "max_items": Field("int", None, low=1, nullable=True, doc="cap on the seed pool (demos)"),
        "eval": Field("eval", {"max_items": None}, doc="evaluation: {max_items}"),
    }


_NOVELTY = {
    "rouge_threshold": Field("float", algo=(NoveltyConfig, "threshold"), source="paper"),
    "nearest_floor": Field("float", algo=(NoveltyConfig, "nearest_floor")),
}

LION: dict[str, Field] = {
    **_common(_rounds(3, source="paper")),
    "tau": Field("float", algo=(DiscriminationConfig, "tau"), low=0.0, high=GAP_SCALE, source="paper"),
    "hard_rule": Field("choice", "gap >= tau", choices=("gap >= tau", "gap > tau"), source="paper"),
    "new_per_round": Field("int", 6000, low=1, high=1_000_000, source="paper"),
    "hard_easy_ratio": Field("float", 1.0, low=0.0, high=100.0, source="paper"),
    **_NOVELTY,
}

TAPIR: dict[str, Field] = {
    **_common(_rounds(algo=(CurriculumConfig, "rounds"))),
    "alpha0": Field("float", algo=(CurriculumConfig, "alpha0")),
    "delta": Field("float", algo=(CurriculumConfig, "delta")),
    "hard_threshold": Field(
        "float", algo=(CurriculumConfig, "hard_threshold"), low=0.0, high=GAP_SCALE, source="paper"
    ),
    "hard_rule": Field("choice", "gap > threshold", choices=("gap > threshold", "gap >= threshold"), source="paper"),
    "seeds_per_round": Field("int", 1000, low=1, high=1_000_000),
    "expansions_per_seed": Field("int", 1, low=1, high=100),
    "ratios": Field("ratios", dict(TAPIR_TASK_RATIOS), source="EasyDistill"),
    "resample_total": Field("int", algo=(ResamplingConfig, "total"), nullable=True, low=1, high=10_000_000),
    # workers.classify's ClassifierConfig.min_confidence; not imported, as that module loads scikit-learn.
    "classifier_min_confidence": Field("float", 0.5, low=0.0, high=1.0),
    **_NOVELTY,
    "style": Field("choice", "rewrite", choices=("rewrite", "answer")),
}

STEP_BY_STEP: dict[str, Field] = {
    **_common(_ONE_PASS),
    "alpha": Field("float", algo=(StepByStepConfig, "alpha"), source="paper"),
    "dataset_kind": Field("choice", "generic", choices=DATASET_KINDS),
    "drop_mismatched": Field("bool", algo=(StepByStepConfig, "drop_mismatched"), source="paper"),
    "label_source": Field(
        "choice", algo=(StepByStepConfig, "label_source"), choices=("gold", "teacher"), source="paper"
    ),
    "examples": Field("choice", None, choices=FEW_SHOT_SETS, nullable=True),
    "style": Field("choice", "auto", choices=("auto", "seq2seq", "causal")),
    "nli_separator": Field("text", algo=(StepByStepConfig, "nli_separator"), source="paper"),
    "causal_separator": Field("text", algo=(StepByStepConfig, "causal_separator")),
}

MOS: dict[str, Field] = {
    **_common(_ONE_PASS),
    "reward": Field("choice", algo=(MoSConfig, "reward"), choices=("cossim", "diff")),
    "smooth": Field("bool", algo=(MoSConfig, "smooth")),
    "beta": Field("float", algo=(MoSConfig, "beta"), source="paper"),
    "update_every": Field("int", algo=(MoSConfig, "update_every"), high=1_000_000, source="paper"),
    "learning_rate": Field("float", algo=(MoSConfig, "learning_rate"), source="paper"),
    "hidden": Field("int", algo=(MoSConfig, "hidden"), high=65_536),
    "target": Field("target", None, doc="MoSpec: the name of one of `datasets`"),
    "tau": Field("temperature", 1.0),
    "teacher_answers": Field("bool", False),
}

PARAMS: dict[str, dict[str, Field]] = {"lion": LION, "tapir": TAPIR, "step_by_step": STEP_BY_STEP, "mos": MOS}


def defaults(recipe: str) -> dict[str, Any]:
    return {name: _copy(field.value) for name, field in PARAMS[recipe].items()}


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def _other_recipe(recipe: str):
    def hint(key: str) -> str:
        owners = [name for name, table in PARAMS.items() if name != recipe and key in table]
        return f" for {recipe} ({key} is a parameter of {' and '.join(owners)})" if owners else ""

    return hint


def _ratios(value: Any, path: Path, problems: Problems) -> dict[str, float] | None:
    if not isinstance(value, Mapping) or not value:
        problems.add(path, f"expected a mapping of task category to ratio, got {describe(value)}")
        return None
    ratios: dict[str, float] = {}
    for name, ratio in value.items():
        where = (*path, str(name))
        if name not in TASK_CATEGORIES:
            problems.add(where, f"unknown task category{close_match(name, TASK_CATEGORIES)}; see docs/algorithms.md")
            continue
        if isinstance(ratio, bool) or not isinstance(ratio, int | float):
            problems.add(where, f"expected a number from 0 to 1, got {describe(ratio)}")
            continue
        try:
            ResamplingConfig.from_dict({"ratios": {name: ratio}})
        except AlgorithmConfigError as error:
            problems.add(where, algorithm_problem(error))
            continue
        ratios[name] = float(ratio)
    if len(ratios) == len(value):
        total = math.fsum(ratios.values())
        if abs(total - 1.0) > RATIO_TOLERANCE:
            problems.add(path, f"the ratios must sum to 1 (within {RATIO_TOLERANCE:g}), they sum to {total:.6g}")
            return None
        return ratios
    return None


def _temperature(value: Any) -> float | str:
    """MoS sampling temperature: a number above 0, or "inf" (uniform over datasets)."""
    if isinstance(value, str) and value.strip().lower() in ("inf", "infinity"):
        return "inf"
    if isinstance(value, float) and value == math.inf:
        return "inf"
    try:
        return coerce(Field("float", low=0.0, open_low=True), value)
    except Invalid as error:
        raise Invalid(f'{error} (or "inf" for uniform sampling)') from None


def validate_params(recipe: str, raw: Any, problems: Problems, *, dataset_names: list[str]) -> dict[str, Any]:
    """The recipe's params with every default filled in; problems are added, never raised."""
    path: Path = ("params",)
    table = PARAMS[recipe]
    params = defaults(recipe)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.add(path, f"expected a mapping of parameters, got {describe(raw)}")
        return params
    problems.check_keys(raw, path, table, hint=_other_recipe(recipe))
    for key, value in raw.items():
        field = table.get(key)
        if field is None:
            continue
        where = (*path, key)
        try:
            if field.kind == "ratios":
                params[key] = _ratios(value, where, problems)
            elif field.kind == "eval":
                params[key] = _eval(value, where, problems)
            elif field.kind == "temperature":
                params[key] = _temperature(value)
            elif field.kind == "target":
                params[key] = _target(value, dataset_names)
            else:
                params[key] = coerce(field, value)
        except Invalid as error:
            problems.add(where, str(error))
    if recipe == "step_by_step" and params["examples"] is None:
        params["examples"] = DEFAULT_FEW_SHOT.get(params["dataset_kind"], "generic")
    return params


def _eval(value: Any, path: Path, problems: Problems) -> dict[str, Any]:
    result = {"max_items": None}
    if value is None:
        return result
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a mapping such as {{max_items: 200}}, got {describe(value)}")
    problems.check_keys(value, path, result)
    if "max_items" in value:
        try:
            result["max_items"] = coerce(Field("int", low=1, nullable=True), value["max_items"])
        except Invalid as error:
            problems.add((*path, "max_items"), str(error))
    return result


def _target(value: Any, dataset_names: list[str]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"expected the name of one of the datasets, got {describe(value)}")
    if value not in dataset_names:
        listed = ", ".join(f'"{name}"' for name in dataset_names) or "none"
        raise Invalid(
            f'"{value}" is not one of the datasets listed under datasets ({listed}){close_match(value, dataset_names)}'
        )
    return value


def algorithm_configs(recipe: str, params: Mapping[str, Any], *, seed: int, dataset_names: list[str]) -> dict:
    """The workers.algorithms configs a recipe's stages take, built from validated params."""
    if recipe == "lion":
        return {
            "discrimination": DiscriminationConfig(tau=params["tau"]),
            "novelty": NoveltyConfig(threshold=params["rouge_threshold"], nearest_floor=params["nearest_floor"]),
        }
    if recipe == "tapir":
        return {
            "curriculum": CurriculumConfig(
                alpha0=params["alpha0"],
                delta=params["delta"],
                rounds=params["rounds"],
                hard_threshold=params["hard_threshold"],
            ),
            "resampling": ResamplingConfig(ratios=dict(params["ratios"]), total=params["resample_total"], seed=seed),
            "novelty": NoveltyConfig(threshold=params["rouge_threshold"], nearest_floor=params["nearest_floor"]),
        }
    if recipe == "step_by_step":
        fields = {f.name for f in dataclasses.fields(StepByStepConfig)}
        chosen = {key: params[key] for key in fields if key in params and key != "style"}
        if params["style"] != "auto":
            chosen["style"] = params["style"]
        return {"step_by_step": StepByStepConfig(**chosen)}
    fields = {f.name for f in dataclasses.fields(MoSConfig)} - {"target", "seed"}
    target = dataset_names.index(params["target"]) if params["target"] is not None else None
    return {"mos": MoSConfig(**{key: params[key] for key in fields}, target=target, seed=seed)}
