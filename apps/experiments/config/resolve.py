"""resolve_config: check a parsed config against the database (datasets and endpoints exist, inline
endpoints would save), changing nothing. Creating inline endpoints is the experiment service's job."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.core.exceptions import ValidationError

from apps.datasets.models import Dataset
from apps.experiments.config.errors import Problems, close_match
from apps.experiments.config.schema import ExperimentConfig
from apps.llm.models import LLMEndpoint

NAME_CUTOFF = 0.85  # "demo-eval" is not a misspelt "demo-alpaca", though difflib rates them 0.6 alike


@dataclasses.dataclass(frozen=True)
class ResolvedEndpoint:
    role: str
    endpoint: LLMEndpoint | None = None  # an existing row: named in the config, or the one an inline name matches
    create: dict | None = None  # llm_endpoint_create(**create) fields, offline_dataset as a Dataset
    local_classifier: bool = False  # offline:task-classifier: the local MiniLM classifier (an endpoint, no dataset)


@dataclasses.dataclass(frozen=True)
class ResolvedConfig:
    config: ExperimentConfig
    datasets: dict[str, list[tuple[Dataset, float | None]]]  # role -> [(dataset, weight)] in config order
    endpoints: dict[str, ResolvedEndpoint]


def _dataset_path(config: ExperimentConfig, index: int, role: str) -> tuple:
    if role == "seed":
        return ("dataset",)
    if role == "eval":
        return ("eval_dataset",)
    return ("datasets", index, "name")


def _no_dataset(name: str, known: list[str]) -> str:
    return f'no dataset named "{name}"{close_match(name, known, NAME_CUTOFF)}'


def _inline_create(config: ExperimentConfig, role: str, inline: dict, datasets: dict[str, Dataset]) -> dict:
    fields = {key: value for key, value in inline.items() if key != "name"}
    fields["name"] = inline.get("name") or f"{config.name} · {role}"[:100]
    if "offline_dataset" in fields:
        fields["offline_dataset"] = datasets.get(fields["offline_dataset"])
        fields["model"] = fields["backend"]
    return fields


def _check_inline(fields: dict[str, Any], path: tuple, problems: Problems) -> None:
    """LLMEndpoint's own validation (field formats and the API-key rule), without saving or checking the
    name's uniqueness: an inline endpoint with an existing name updates that endpoint."""
    endpoint = LLMEndpoint(**{key: value for key, value in fields.items() if key != "offline_dataset"})
    if fields.get("offline_dataset") is not None:
        endpoint.offline_dataset = fields["offline_dataset"]
    try:
        endpoint.full_clean(exclude=["offline_dataset"], validate_unique=False)
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            where = path if field == "__all__" or "backend" in fields else (*path, field)
            for message in messages:
                problems.add(where, message)


def resolve_config(config: ExperimentConfig) -> ResolvedConfig:
    """Look up what the config names; raises ConfigError with paths for whatever is missing."""
    problems = Problems()
    wanted = {ref.name for ref in config.datasets}
    offline = {
        ref.inline["offline_dataset"]
        for ref in config.endpoints.values()
        if ref.inline and "offline_dataset" in ref.inline
    }
    found = {dataset.name: dataset for dataset in Dataset.objects.filter(name__in=wanted | offline)}
    known: list[str] | None = None

    def known_names() -> list[str]:
        nonlocal known
        if known is None:  # only when something is missing: for "did you mean"
            known = list(Dataset.objects.values_list("name", flat=True)[:10_000])
        return known

    datasets: dict[str, list[tuple[Dataset, float | None]]] = {}
    skill_index = 0
    for ref in config.datasets:
        index = skill_index
        if ref.role in ("skill", "target"):
            skill_index += 1
        path = _dataset_path(config, index, ref.role)
        dataset = found.get(ref.name)
        if dataset is None:
            problems.add(path, _no_dataset(ref.name, known_names()))
        elif getattr(dataset, "owner_experiment_id", None) is not None and ref.role != "eval":
            problems.add(path, f'"{ref.name}" holds what another experiment generated; pick an imported dataset')
        else:
            datasets.setdefault(ref.role, []).append((dataset, ref.weight))

    named = {ref.name for ref in config.endpoints.values() if ref.name is not None}
    inline_names = {ref.inline["name"] for ref in config.endpoints.values() if ref.inline and ref.inline.get("name")}
    rows = {endpoint.name: endpoint for endpoint in LLMEndpoint.objects.filter(name__in=named | inline_names)}
    endpoints: dict[str, ResolvedEndpoint] = {}
    for role, ref in config.endpoints.items():
        path = ("endpoints", role)
        if ref.is_local_classifier:
            backend = ref.inline["backend"]
            create = {"name": ref.shorthand, "backend": backend, "model": backend}
            existing = LLMEndpoint.objects.filter(name=ref.shorthand).first()
            endpoints[role] = ResolvedEndpoint(role, endpoint=existing, create=create, local_classifier=True)
        elif ref.name is not None:
            if ref.name in rows:
                endpoints[role] = ResolvedEndpoint(role, endpoint=rows[ref.name])
            else:
                names = list(LLMEndpoint.objects.values_list("name", flat=True)[:10_000])
                problems.add(path, f'no endpoint named "{ref.name}"{close_match(ref.name, names, NAME_CUTOFF)}')
        else:
            inline = dict(ref.inline or {})
            if "offline_dataset" in inline and inline["offline_dataset"] not in found:
                problems.add(path, f"{_no_dataset(inline['offline_dataset'], known_names())} (for {ref.shorthand})")
                continue
            create = _inline_create(config, role, inline, found)
            if ref.shorthand is not None:
                create["name"] = ref.shorthand  # one shared row per offline backend and dataset
            _check_inline(create, path, problems)
            existing = rows.get(create["name"]) or LLMEndpoint.objects.filter(name=create["name"]).first()
            endpoints[role] = ResolvedEndpoint(role, endpoint=existing, create=create)
    problems.raise_if_any()
    return ResolvedConfig(config=config, datasets=datasets, endpoints=endpoints)
