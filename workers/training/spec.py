"""The training job's spec: one dataclass, read from JSON, validated, and saved into every checkpoint.

Pure Python (no torch), so a bad spec is rejected before any model library loads. Every problem is
reported as "field: problem", one per line, and the entry point exits with code 2.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

ARCHITECTURES = ("auto", "causal", "seq2seq")
FINETUNES = ("lora", "full")
METHODS = ("sft", "step_by_step", "mos")
SCHEDULES = ("cosine", "linear", "constant")
BF16 = ("auto", "true", "false")
ATTENTION = ("auto", "sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")
STEP_BY_STEP_KEYS = ("alpha",)
MOS_KEYS = (
    "reward",
    "smooth",
    "beta",
    "update_every",
    "learning_rate",
    "hidden",
    "target",
    "seed",
    "datasets",
    "tau",  # the temperature of p_psi's starting distribution: a number > 0 or "inf" (uniform)
    "weights",  # per dataset (in `datasets` order): a multiplier on its size, or null for 1
)
# MoS keys that set the sampler's starting distribution rather than MoSConfig's fields.
MOS_START_KEYS = ("datasets", "target", "tau", "weights")


class SpecError(ValueError):
    """The spec names an unknown field or holds a wrong value; `problems` lists (field, problem)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{field}: {problem}" for field, problem in problems))


@dataclasses.dataclass
class TrainSpec:
    job_id: int
    base_model: str  # "builtin:tiny" | "builtin:tiny-seq2seq" | "builtin:smollm2-135m" | a local HF folder
    data_path: str  # JSONL rows {"prompt", "target", "kind"?, "dataset"?}
    output_dir: str  # checkpoints/, final/, metrics.jsonl, result.json
    architecture: str = "auto"
    finetune: str = "lora"
    resume_from: str | None = None
    method: str = "sft"
    method_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: float = 1.0
    max_steps: int | None = None
    learning_rate: float = 2e-4
    lr_schedule: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512
    packing: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str | list[str] = "all-linear"
    gradient_checkpointing: bool = False
    attn_implementation: str = "auto"  # auto: flash_attention_2 where installed on CUDA, else sdpa
    bf16: str = "auto"
    seed: int = 0
    save_every: int = 50
    keep_checkpoints: int = 2
    log_every: int = 1
    eval_data_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


REQUIRED = ("job_id", "base_model", "data_path", "output_dir")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) and math.isfinite(value)


def _check_int(problems: list, data: dict, name: str, low: int, high: int | None = None) -> None:
    value = data.get(name)
    if name not in data or value is None:
        return
    if not _is_int(value) or value < low or (high is not None and value > high):
        bound = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        problems.append((name, f"expected {bound}, got {value!r}"))


def _check_number(problems: list, data: dict, name: str, low: float, high: float, *, open_low: bool = False) -> None:
    if name not in data:
        return
    value = data[name]
    ok = _is_number(value) and (value > low if open_low else value >= low) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        problems.append((name, f"expected a number in {bracket}{low}, {high}], got {value!r}"))


def _check_choice(problems: list, data: dict, name: str, choices: tuple[str, ...]) -> None:
    if name in data and data[name] not in choices:
        problems.append((name, f"expected one of {', '.join(choices)}, got {data[name]!r}"))


def _check_method_params(problems: list, method: str, params: Any) -> None:
    if not isinstance(params, dict):
        problems.append(("method_params", f"expected an object, got {params!r}"))
        return
    allowed = {"sft": (), "step_by_step": STEP_BY_STEP_KEYS, "mos": MOS_KEYS}.get(method, ())
    for key in sorted(set(params) - set(allowed)):
        problems.append(
            (f"method_params.{key}", f"unknown for method {method!r}; allowed: {', '.join(allowed) or 'none'}")
        )
    if method == "step_by_step" and "alpha" in params:
        _check_number(problems, {"method_params.alpha": params["alpha"]}, "method_params.alpha", 0.0, 1.0)
    if method == "mos":
        from workers.algorithms.config import ConfigError
        from workers.algorithms.mos import MoSConfig  # numpy only; validates the scorer's own ranges

        fields = {k: v for k, v in params.items() if k not in MOS_START_KEYS}
        try:
            MoSConfig.from_dict(fields)
        except ConfigError as error:
            problems.append(("method_params", str(error)))
        _check_mos_start(problems, params)
        datasets = params.get("datasets")
        if datasets is not None and (
            not isinstance(datasets, list) or len(datasets) < 2 or not all(isinstance(d, str) for d in datasets)
        ):
            problems.append(
                ("method_params.datasets", f"expected a list of at least 2 dataset names, got {datasets!r}")
            )
        target = params.get("target")
        if target is not None and not isinstance(target, str) and not (_is_int(target) and target >= 0):
            problems.append(("method_params.target", f"expected a dataset name or index, got {target!r}"))


def _check_mos_start(problems: list, params: dict) -> None:
    tau = params.get("tau")
    if tau is not None and tau != "inf" and not (_is_number(tau) and tau > 0):
        problems.append(("method_params.tau", f'expected a number above 0 or "inf", got {tau!r}'))
    weights = params.get("weights")
    if weights is None:
        return
    if not isinstance(weights, list) or not all(w is None or (_is_number(w) and w > 0) for w in weights):
        problems.append(("method_params.weights", f"expected a list of numbers above 0 or nulls, got {weights!r}"))
        return
    datasets = params.get("datasets")
    if not isinstance(datasets, list) or len(datasets) != len(weights):
        problems.append(("method_params.weights", "needs `datasets` and one weight (or null) for each of them"))


def spec_from_dict(data: Any) -> TrainSpec:
    """Validate every field at once; raise SpecError listing all problems."""
    if not isinstance(data, dict):
        raise SpecError([("spec", f"expected a JSON object, got {type(data).__name__}")])
    problems: list[tuple[str, str]] = []
    known = {field.name for field in dataclasses.fields(TrainSpec)}
    for key in sorted(set(data) - known):
        problems.append((key, "unknown field"))
    for key in REQUIRED:
        if data.get(key) in (None, ""):
            problems.append((key, "required"))
    _check_int(problems, data, "job_id", 0)
    for name in ("base_model", "data_path", "output_dir"):
        if data.get(name) is not None and not isinstance(data[name], str):
            problems.append((name, f"expected a string, got {data[name]!r}"))
    for name in ("resume_from", "eval_data_path"):
        if data.get(name) is not None and not isinstance(data[name], str):
            problems.append((name, f"expected a string or null, got {data[name]!r}"))
    _check_choice(problems, data, "architecture", ARCHITECTURES)
    _check_choice(problems, data, "finetune", FINETUNES)
    _check_choice(problems, data, "method", METHODS)
    _check_choice(problems, data, "lr_schedule", SCHEDULES)
    _check_choice(problems, data, "bf16", BF16)
    _check_choice(problems, data, "attn_implementation", ATTENTION)
    _check_number(problems, data, "epochs", 0.0, 1000.0, open_low=True)
    _check_int(problems, data, "max_steps", 1)
    _check_number(problems, data, "learning_rate", 0.0, 1.0, open_low=True)
    _check_number(problems, data, "warmup_ratio", 0.0, 1.0)
    _check_number(problems, data, "weight_decay", 0.0, 1.0)
    _check_number(problems, data, "max_grad_norm", 0.0, 1e6)
    _check_number(problems, data, "lora_dropout", 0.0, 0.9)
    for name, low, high in (
        ("batch_size", 1, 65536),
        ("grad_accum", 1, 65536),
        ("max_length", 8, 1_048_576),
        ("lora_r", 1, 4096),
        ("lora_alpha", 1, 65536),
        ("seed", 0, 2**32 - 1),
        ("save_every", 1, None),
        ("keep_checkpoints", 1, None),
        ("log_every", 1, None),
    ):
        _check_int(problems, data, name, low, high)
    for name in ("packing", "gradient_checkpointing"):
        if name in data and not isinstance(data[name], bool):
            problems.append((name, f"expected true or false, got {data[name]!r}"))
    targets = data.get("lora_target_modules", "all-linear")
    if not (
        isinstance(targets, str) or (isinstance(targets, list) and targets and all(isinstance(t, str) for t in targets))
    ):
        problems.append(("lora_target_modules", f"expected a string or a list of module names, got {targets!r}"))
    if "method_params" in data:
        _check_method_params(problems, data.get("method", "sft"), data["method_params"])
    if problems:
        raise SpecError(problems)
    return TrainSpec(**data)


def load_spec(path: str | Path) -> TrainSpec:
    """Read and validate a spec file; a missing file or broken JSON is a SpecError too."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SpecError([("spec", f"cannot read {path}: {error.strerror or error}")]) from error
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError([("spec", f"{path} is not valid JSON: {error}")]) from error
    return spec_from_dict(data)
