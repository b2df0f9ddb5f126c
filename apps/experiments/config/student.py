"""The `student:` section: which model to train and the trainer's hyper-parameters.

The defaults mirror workers.training.spec.TrainSpec (the trainer's own dataclass). They are kept here
rather than imported because workers.training loads torch, which no module of apps may import;
tests/apps/experiments/config/test_student.py compares the two tables so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.experiments.config.errors import Path, Problems, describe
from apps.experiments.config.fields import Field, Invalid, coerce

STUDENT: dict[str, Field] = {
    "model": Field(
        "str", "builtin:tiny", max_length=300, doc="builtin:tiny, builtin:smollm2-135m, or an HF path or id"
    ),
    "architecture": Field("choice", "auto", choices=("auto", "causal", "seq2seq")),
    "finetune": Field("choice", "lora", choices=("lora", "full")),
    "epochs": Field("float", 1.0, low=0.0, open_low=True, high=1000.0),
    "max_steps": Field("int", None, low=1, high=10_000_000, nullable=True),
    "learning_rate": Field("float", 2e-4, low=0.0, high=1.0, open_low=True, open_high=True),
    "lr_schedule": Field("choice", "cosine", choices=("cosine", "linear", "constant")),
    "warmup_ratio": Field("float", 0.03, low=0.0, high=1.0, open_high=True),
    "weight_decay": Field("float", 0.0, low=0.0, high=1.0),
    "max_grad_norm": Field("float", 1.0, low=0.0, high=1e6),
    "batch_size": Field("int", 8, low=1, high=65_536),
    "grad_accum": Field("int", 1, low=1, high=4096),
    "max_length": Field("int", 512, low=16, high=32_768),
    "packing": Field("bool", True),
    "lora_r": Field("int", 16, low=1, high=4096),
    "lora_alpha": Field("int", 32, low=1, high=65_536),
    "lora_dropout": Field("float", 0.05, low=0.0, high=0.9),
    "lora_target_modules": Field("modules", "all-linear", doc='"all-linear" or a list of module names'),
    "gradient_checkpointing": Field("bool", False),
    "attn_implementation": Field(
        "choice",
        "auto",
        choices=("auto", "sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention"),
    ),
    "bf16": Field("bf16", "auto", doc='"auto", true or false'),
    "save_every": Field("int", 50, low=1, high=10_000_000),
    "keep_checkpoints": Field("int", 2, low=1, high=1000),
    "log_every": Field("int", 1, low=1, high=1_000_000),
}

# TrainSpec fields the engine fills in itself; naming them under student: is a mistake worth explaining.
_ENGINE_OWNED = {
    "seed": "the trainer's seed is the config's top-level seed",
    "base_model": "write the model as student.model",
    "method": "the method follows from the recipe",
    "method_params": "the method's parameters are the recipe's params",
    "job_id": "set by the engine",
    "data_path": "set by the engine from the round's frozen snapshot",
    "eval_data_path": "set by the engine from eval_dataset",
    "output_dir": "set by the engine",
    "resume_from": "the engine resumes from the job's last checkpoint by itself",
}


def student_defaults() -> dict[str, Any]:
    return {name: field.value for name, field in STUDENT.items()}


def _bf16(value: Any) -> str:
    """TrainSpec takes "auto", "true" or "false"; YAML's true and false mean the same."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value in ("auto", "true", "false"):
        return value
    raise Invalid(f'expected "auto", true or false, got {describe(value)}')


def _modules(value: Any) -> str | list[str]:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list) and value and all(isinstance(item, str) and item.strip() for item in value):
        return [item.strip() for item in value]
    raise Invalid(f'expected "all-linear" or a list of module names such as [q_proj, v_proj], got {describe(value)}')


def validate_student(raw: Any, problems: Problems) -> dict[str, Any]:
    path: Path = ("student",)
    student = student_defaults()
    if raw is None:
        return student
    if isinstance(raw, str):
        raw = {"model": raw}  # `student: builtin:tiny` is short for `student: {model: builtin:tiny}`
    if not isinstance(raw, Mapping):
        problems.add(path, f"expected a mapping such as {{model: builtin:tiny, finetune: lora}}, got {describe(raw)}")
        return student

    def hint(key: str) -> str:
        return f" ({_ENGINE_OWNED[key]})" if key in _ENGINE_OWNED else ""

    problems.check_keys(raw, path, STUDENT, hint=hint)
    for key, value in raw.items():
        field = STUDENT.get(key)
        if field is None:
            continue
        try:
            if field.kind == "bf16":
                student[key] = _bf16(value)
            elif field.kind == "modules":
                student[key] = _modules(value)
            else:
                student[key] = coerce(field, value)
        except Invalid as error:
            problems.add((*path, key), str(error))
    return student
