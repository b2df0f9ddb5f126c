"""parse_config: an experiment's config (YAML, JSON or a dict) to a validated, frozen ExperimentConfig.

Every problem is collected before one ConfigError is raised, each named by its key's path (and line, for
text). The canonical form (`to_dict`) has every default filled in and numbers normalised, so its hash
says whether two configs run the same experiment however they were written.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from apps.experiments.config.endpoints import EndpointRef, validate_endpoints
from apps.experiments.config.errors import ConfigError, Problems, describe
from apps.experiments.config.fields import Field, Invalid, coerce
from apps.experiments.config.loading import load_text
from apps.experiments.config.params import PARAMS, algorithm_configs, validate_params
from apps.experiments.config.student import validate_student
from workers.algorithms.config import ConfigError as AlgorithmConfigError

RECIPES = ("lion", "tapir", "step_by_step", "mos")
TOP_LEVEL = (
    "name", "recipe", "dataset", "datasets", "eval_dataset", "endpoints", "student", "params", "review",
    "budget", "seed",
)  # fmt: skip
DATASET_ROLES = ("seed", "skill", "target", "eval")
# recipe -> its review gates, in the order the round meets them.
GATES: dict[str, tuple[str, ...]] = {
    "lion": ("hard_verdicts", "generated"),
    "tapir": ("hard_verdicts", "task_labels", "generated", "rewrites"),
    "step_by_step": ("rationales",),
    "mos": ("answers",),
}
DEFAULT_REVIEW = "sample:0.1"  # ours: a reviewer sees a tenth of each gate's items unless told otherwise
# review.overlap: reviewers per task. The canonical form leaves it out at its default, 1, so the configs
# written before it existed keep their hash.
OVERLAP = "overlap"
_OVERLAP = Field("int", default=1, low=1, high=5)
MAX_SEED = 2**32 - 1  # TrainSpec.seed and numpy's legacy seeding take 32 bits
MAX_USD = Decimal("99999999.9999")  # Experiment.budget_usd: 12 digits, 4 after the point
_NAME = Field("str", max_length=200)


@dataclasses.dataclass(frozen=True)
class DatasetRef:
    name: str
    role: str  # seed | skill | target | eval
    weight: float | None = None


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    name: str
    recipe: str
    datasets: tuple[DatasetRef, ...]
    endpoints: dict[str, EndpointRef]
    student: dict
    params: dict
    review: dict
    budget: dict
    seed: int
    # (path, text) of keys that are valid but have no effect for this recipe; not part of to_dict or hash.
    notes: tuple[tuple[str, str], ...] = dataclasses.field(default=(), compare=False)

    def datasets_with_role(self, *roles: str) -> list[DatasetRef]:
        return [ref for ref in self.datasets if ref.role in roles]

    @property
    def skill_names(self) -> list[str]:
        """mos: the training datasets in the order the sampler indexes them (MoSConfig.target)."""
        return [ref.name for ref in self.datasets_with_role("skill", "target")]

    def algorithm_configs(self) -> dict:
        """The workers.algorithms configs this recipe's stages take (DiscriminationConfig, NoveltyConfig, …)."""
        return algorithm_configs(self.recipe, self.params, seed=self.seed, dataset_names=self.skill_names)

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"name": self.name, "recipe": self.recipe}
        if self.recipe == "mos":
            data["datasets"] = [
                {"name": ref.name, "weight": ref.weight} for ref in self.datasets_with_role("skill", "target")
            ]
        else:
            data["dataset"] = self.datasets_with_role("seed")[0].name
        evals = self.datasets_with_role("eval")
        data["eval_dataset"] = evals[0].name if evals else None
        data["endpoints"] = {role: ref.to_value() for role, ref in self.endpoints.items()}
        data["student"] = copy.deepcopy(self.student)
        data["params"] = copy.deepcopy(self.params)
        data["review"] = copy.deepcopy(self.review)
        usd = self.budget.get("usd")
        data["budget"] = {"usd": None if usd is None else str(usd), "tokens": self.budget.get("tokens")}
        data["seed"] = self.seed
        return data

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def _dataset_name(value: Any, path, problems: Problems) -> str | None:
    try:
        return coerce(_NAME, value)
    except Invalid as error:
        problems.add(path, str(error).replace("expected text", "expected a dataset's name"))
        return None


def _skills(raw: Any, problems: Problems) -> list[tuple[str, float | None]]:
    path = ("datasets",)
    if not isinstance(raw, list):
        problems.add(
            path, f"expected a list of datasets such as [{{name: a}}, {{name: b, weight: 2}}], got {describe(raw)}"
        )
        return []
    skills: list[tuple[str, float | None]] = []
    for index, item in enumerate(raw):
        where = (*path, index)
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, Mapping):
            problems.add(where, f"expected a dataset {{name, weight?}}, got {describe(item)}")
            continue
        problems.check_keys(item, where, ("name", "weight"))
        if "name" not in item:
            problems.add((*where, "name"), "each dataset needs its name")
            continue
        name = _dataset_name(item["name"], (*where, "name"), problems)
        weight = None
        try:
            weight = coerce(Field("float", low=0.0, open_low=True, nullable=True), item.get("weight"))
        except Invalid as error:
            problems.add((*where, "weight"), str(error))
        if name is None:
            continue
        if any(name == seen for seen, _ in skills):
            problems.add((*where, "name"), f'"{name}" is listed twice')
            continue
        skills.append((name, weight))
    if len(raw) < 2:
        problems.add(path, f"mos mixes skills: list at least 2 datasets, got {len(raw)}")
    return skills


def _datasets(data: Mapping, recipe: str | None, problems: Problems) -> list[DatasetRef]:
    refs: list[DatasetRef] = []
    if recipe == "mos":
        if "dataset" in data:
            problems.add(("dataset",), "mos takes its datasets as a list under datasets: [{name, weight?}]")
        if data.get("datasets") is None:
            problems.add(("datasets",), "mos needs datasets: a list of at least 2 datasets (its skills)")
        else:
            refs += [DatasetRef(name, "skill", weight) for name, weight in _skills(data["datasets"], problems)]
    elif recipe is not None:
        if "datasets" in data:
            problems.add(
                ("datasets",), f"only mos takes several datasets; {recipe} takes one seed dataset: dataset: <name>"
            )
        if data.get("dataset") is None:
            problems.add(("dataset",), f"{recipe} needs its seed dataset: dataset: <name>")
        elif (name := _dataset_name(data["dataset"], ("dataset",), problems)) is not None:
            refs.append(DatasetRef(name, "seed"))
    if data.get("eval_dataset") is not None:
        name = _dataset_name(data["eval_dataset"], ("eval_dataset",), problems)
        if name is not None and any(ref.name == name for ref in refs):
            problems.add(
                ("eval_dataset",), f'"{name}" is also a training dataset; evaluation needs held-out instructions'
            )
        elif name is not None:
            refs.append(DatasetRef(name, "eval"))
    return refs


def _gate(value: Any) -> dict:
    """ "all" | "none" | "sample:<fraction>" | {mode, fraction} -> {"mode", "fraction"}."""
    expected = "expected all, none or sample:<fraction from 0 to 1> (e.g. sample:0.1)"
    fraction_field = Field("float", low=0.0, high=1.0)
    if isinstance(value, Mapping):
        unknown = set(value) - {"mode", "fraction"}
        if unknown:
            raise Invalid(f"unknown key {describe(sorted(map(str, unknown))[0])}; a gate takes mode and fraction")
        mode = value.get("mode")
        if mode == "sample":
            return {"mode": "sample", "fraction": coerce(fraction_field, value.get("fraction"))}
        if mode in ("all", "none"):
            implied = 1.0 if mode == "all" else 0.0
            if value.get("fraction", implied) != implied:
                raise Invalid(f"mode {mode} reviews {'every' if implied else 'no'} item; its fraction is {implied:g}")
            return {"mode": mode, "fraction": implied}
        raise Invalid(f"{expected}, got mode {describe(mode)}")
    if value in ("all", "none"):
        return {"mode": value, "fraction": 1.0 if value == "all" else 0.0}
    if isinstance(value, str) and value.startswith("sample:"):
        text = value.removeprefix("sample:").strip()
        try:
            number = float(text)
        except ValueError:
            raise Invalid(f"{expected}, got {describe(value)}") from None
        try:
            return {"mode": "sample", "fraction": coerce(fraction_field, number)}
        except Invalid:
            raise Invalid(f"expected a sample fraction from 0 to 1, got {describe(value)}") from None
    raise Invalid(f"{expected}, got {describe(value)}")


def _review(recipe: str | None, raw: Any, problems: Problems) -> dict:
    gates = GATES.get(recipe or "", ())
    review = {gate: _gate(DEFAULT_REVIEW) for gate in gates}
    if raw is None:
        return review
    if not isinstance(raw, Mapping):
        problems.add(("review",), f"expected a mapping of gate to all, none or sample:<fraction>, got {describe(raw)}")
        return review
    if recipe is None:
        return review

    if OVERLAP in raw:
        try:
            overlap = coerce(_OVERLAP, raw[OVERLAP])
        except Invalid as error:
            problems.add(("review", OVERLAP), f"{error} (reviewers per review task)")
        else:
            if overlap != _OVERLAP.value:
                review[OVERLAP] = overlap
    raw = {key: value for key, value in raw.items() if key != OVERLAP}
    other_recipes = {key: [name for name, names in GATES.items() if key in names] for key in raw if key not in gates}
    for key, owners in other_recipes.items():
        if owners:
            problems.note(("review", key), f"ignored: {recipe} has no {key} gate (a gate of {' and '.join(owners)})")
    allowed = [*gates, OVERLAP, *(key for key, owners in other_recipes.items() if owners)]
    problems.check_keys(raw, ("review",), allowed)
    for gate, value in raw.items():
        if gate in gates or other_recipes.get(gate):  # an ignored gate's value must still be readable
            try:
                checked = _gate(value)
            except Invalid as error:
                problems.add(("review", gate), str(error))
                continue
            if gate in gates:
                review[gate] = checked
    return review


def _budget(raw: Any, problems: Problems) -> dict:
    budget: dict[str, Any] = {"usd": None, "tokens": None}
    if raw is None:
        return budget
    if not isinstance(raw, Mapping):
        problems.add(("budget",), f"expected a mapping such as {{usd: 50, tokens: 2000000}}, got {describe(raw)}")
        return budget
    problems.check_keys(raw, ("budget",), budget)
    usd = raw.get("usd")
    if usd is not None:
        try:
            if isinstance(usd, bool) or not isinstance(usd, int | float | str):
                raise InvalidOperation
            amount = Decimal(str(usd).strip())
            if not amount.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            problems.add(("budget", "usd"), f"expected an amount in US dollars, got {describe(usd)}")
        else:
            if not Decimal(0) <= amount <= MAX_USD:
                problems.add(
                    ("budget", "usd"), f"expected an amount from 0 to {MAX_USD} US dollars, got {describe(usd)}"
                )
            else:
                budget["usd"] = amount.quantize(Decimal("0.0001"))
    try:
        budget["tokens"] = coerce(Field("int", low=0, high=2**63 - 1, nullable=True), raw.get("tokens"))
    except Invalid as error:
        problems.add(("budget", "tokens"), str(error))
    return budget


def _nul_characters(data: Mapping, problems: Problems) -> None:
    """Name every key and text holding a NUL character (U+0000): PostgreSQL stores it in neither text nor
    JSON, so a lookup or the saved config would fail in the database instead of here. (YAML text cannot
    hold one; a JSON body can, as \\u0000.) Walked with a stack, however deep the data."""
    stack: list[tuple[tuple, object]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str) and "\x00" in value:
            problems.add(path, "contains a NUL character (\\u0000)")
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and "\x00" in key:
                    problems.add((*path, key), "the key contains a NUL character (\\u0000)")
                else:
                    stack.append(((*path, key), item))
        elif isinstance(value, list | tuple):
            stack.extend(((*path, index), item) for index, item in enumerate(value))


def parse_config(source: str | bytes | Mapping, *, filename: str = "") -> ExperimentConfig:
    """Validate a config; raises ConfigError naming every problem. Pure: reads no database."""
    if isinstance(source, str | bytes):
        data, marks = load_text(source, filename=filename)
    else:
        data, marks = source, {}
    problems = Problems(marks, filename=filename)
    if not isinstance(data, Mapping):
        got = "an empty document" if data is None else describe(data)
        problems.add((), f"expected a mapping of config keys ({', '.join(TOP_LEVEL[:3])}, …), got {got}")
        problems.raise_if_any()
    problems.check_keys(data, (), TOP_LEVEL)
    _nul_characters(data, problems)

    name = None
    if data.get("name") is None:
        problems.add(("name",), "every experiment needs a name")
    else:
        try:
            name = coerce(_NAME, data["name"])
            if any(ord(ch) < 32 for ch in name):
                raise Invalid("expected one line of text")
        except Invalid as error:
            problems.add(("name",), str(error))
    recipe = None
    if data.get("recipe") is None:
        problems.add(("recipe",), f"expected one of {', '.join(RECIPES)}")
    else:
        try:
            recipe = coerce(Field("choice", choices=RECIPES), data["recipe"])
        except Invalid as error:
            problems.add(("recipe",), str(error))

    datasets = _datasets(data, recipe, problems)
    skill_names = [ref.name for ref in datasets if ref.role in ("skill", "target")]
    params: dict = {}
    if recipe is not None:
        params = validate_params(recipe, data.get("params"), problems, dataset_names=skill_names)
        if recipe == "mos" and params.get("target") is not None:
            datasets = [
                dataclasses.replace(ref, role="target") if ref.name == params["target"] else ref for ref in datasets
            ]
    elif data.get("params") is not None and not isinstance(data["params"], Mapping):
        problems.add(("params",), f"expected a mapping of parameters, got {describe(data['params'])}")
    teacher_needed = recipe == "mos" and bool(params.get("teacher_answers"))
    endpoints = validate_endpoints(recipe, data.get("endpoints"), problems, teacher_needed=teacher_needed)
    student = validate_student(data.get("student"), problems)
    review = _review(recipe, data.get("review"), problems)
    budget = _budget(data.get("budget"), problems)
    seed = 0
    try:
        seed = coerce(Field("int", 0, low=0, high=MAX_SEED), data.get("seed", 0))
    except Invalid as error:
        problems.add(("seed",), str(error))

    if not problems and recipe is not None:
        try:  # any rule that spans several keys of one algorithm config
            algorithm_configs(recipe, params, seed=seed, dataset_names=skill_names)
        except (AlgorithmConfigError, ValueError) as error:
            problems.add(("params",), str(error))
    problems.raise_if_any()
    assert name is not None and recipe is not None
    order = {role: i for i, role in enumerate(("seed", "skill", "target", "eval"))}
    return ExperimentConfig(
        name=name,
        recipe=recipe,
        datasets=tuple(sorted(datasets, key=lambda ref: order[ref.role] if ref.role in ("seed", "eval") else 1)),
        endpoints=endpoints,
        student=student,
        params=params,
        review=review,
        budget=budget,
        seed=seed,
        notes=tuple(problems.notes),
    )


__all__ = ["GATES", "PARAMS", "RECIPES", "ConfigError", "DatasetRef", "ExperimentConfig", "parse_config"]
