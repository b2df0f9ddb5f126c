"""The new-experiment form: a YAML/JSON config plus a few friendly fields for common keys, validated by the
config file's own parse_config and resolve_config (so the form and `create_experiment --config` refuse
the same things, with the same key paths), an estimate of round 1 before anything is created, and
creation (and optionally the start) through the experiment services."""

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms

from apps.experiments.config import ConfigError, ExperimentConfig, parse_config, resolve_config
from apps.experiments.config.loading import load_text

# form field -> (the config key path it sets, label, help)
FRIENDLY: dict[str, tuple[tuple[str, ...], str, str]] = {
    "name": (("name",), "Name", "Replaces the config's name."),
    "rounds": (("params", "rounds"), "Rounds", "Replaces params.rounds."),
    "budget_usd": (("budget", "usd"), "Budget (US dollars)", "Replaces budget.usd; the experiment pauses there."),
    "seed": (("seed",), "Seed", "Replaces the seed every random choice derives from."),
}
PATH_TO_FIELD = {".".join(path): name for name, (path, _, _) in FRIENDLY.items()}


class NewExperimentForm(forms.Form):
    config = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "code"}),
        label="Config (YAML or JSON)",
    )
    name = forms.CharField(required=False, max_length=300)
    rounds = forms.CharField(required=False, max_length=40)
    budget_usd = forms.CharField(required=False, max_length=40)
    seed = forms.CharField(required=False, max_length=40)
    start = forms.BooleanField(required=False, label="Start it once created")
    auto_approve = forms.BooleanField(
        required=False, label="Decide review gates and approve training automatically (headless run)"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (_path, label, help_text) in FRIENDLY.items():
            self.fields[name].label = label
            self.fields[name].help_text = f"{help_text} Leave blank to keep the config's."

    def friendly_fields(self):
        """(bound field, the key path it sets) for the template."""
        return [(self[name], ".".join(path)) for name, (path, _, _) in FRIENDLY.items()]


@dataclass
class Checked:
    """The outcome of checking the form: a config ready to create, or the problems by field and by path."""

    config: ExperimentConfig | None = None
    resolved: Any = None
    field_errors: dict[str, list[str]] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (key path, problem) not shown by a field
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.config is not None and not self.field_errors and not self.problems

    def add(self, path: str, problem: str, filled: set[str]) -> None:
        name = PATH_TO_FIELD.get(path)
        if name in filled:
            self.field_errors.setdefault(name, []).append(problem)
        else:
            self.problems.append((path, problem))


def _friendly_values(cleaned: Mapping[str, Any], checked: Checked) -> dict[str, Any]:
    """Each filled friendly field read as a YAML value would be (12 is a number, "abc" text)."""
    values = {}
    for name in FRIENDLY:
        raw = (cleaned.get(name) or "").strip()
        if not raw:
            continue
        try:
            values[name] = load_text(raw)[0]
        except ConfigError as error:
            checked.field_errors.setdefault(name, []).extend(problem for _, problem in error.problems)
    return values


def _set(data: dict, path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        if not isinstance(child, dict):
            return  # not a mapping: parse_config reports the key as written
        node = child
    node[path[-1]] = value


def check_new_experiment(cleaned: Mapping[str, Any], refused: Mapping[str, list[str]] | None = None) -> Checked:
    """Parse and resolve the form's config with its friendly fields applied. Without a friendly field the
    text is parsed as written, so each problem also names its line. `refused` is the form's own errors:
    text the form field itself refused (a NUL character) never reaches cleaned_data."""
    checked = Checked()
    text = cleaned.get("config") or ""
    if not text.strip():
        reason = " ".join((refused or {}).get("config", []))
        checked.problems.append(("config", reason or "paste a config (YAML or JSON) or pick a demo above"))
        return checked
    values = _friendly_values(cleaned, checked)
    filled = set(values) | set(checked.field_errors)
    try:
        source: Any = text
        if values:
            data = load_text(text)[0]
            if isinstance(data, Mapping):
                source = copy.deepcopy(dict(data))
                for name, value in values.items():
                    _set(source, FRIENDLY[name][0], value)
        config = parse_config(source)
        checked.notes = list(config.notes)
        resolved = resolve_config(config)
    except ConfigError as error:
        for path, problem in error.problems:
            checked.add(path, problem, filled)
        return checked
    if not checked.field_errors:
        checked.config, checked.resolved = config, resolved
    return checked


def estimate_totals(rows) -> dict:
    keys = ("calls", "in_ledger", "prompt_tokens", "expected_tokens", "expected_cost", "max_cost")
    return {key: sum(getattr(row, key) for row in rows) for key in keys}


__all__ = ["FRIENDLY", "Checked", "NewExperimentForm", "check_new_experiment", "estimate_totals"]
