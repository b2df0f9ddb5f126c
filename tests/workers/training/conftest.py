"""Tiny students and data for the trainer's tests (CPU, seconds each).

Built-in students are cached under the test var dir, so a test session builds builtin:tiny once and
converts SmolLM2 once per checkout; the student-building tests use folders of their own.
"""

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault(
    "RETORT_MODEL_CACHE", str(Path(os.environ.get("RETORT_VAR_DIR", "var/test")).resolve() / "models")
)

REPO_ROOT = Path(__file__).resolve().parents[3]

PAIRS = [
    ("Name a primary colour.", "Red is a primary colour."),
    ("What is two plus two?", "Two plus two is four."),
    ("Give a synonym of quick.", "Fast."),
    ("Translate 'bonjour' into English.", "Hello."),
    ("Which planet is closest to the sun?", "Mercury is the closest planet to the sun."),
    (
        "Write a short greeting for a colleague who has just joined the team.",
        "Welcome aboard, we are glad you are here!",
    ),
    ("Is a tomato a fruit?", "Yes, botanically a tomato is a fruit."),
    ("Spell the word cat backwards.", "tac"),
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def sft_data(tmp_path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl", [{"prompt": p, "target": t, "kind": "sft"} for p, t in PAIRS])


@pytest.fixture
def make_spec(tmp_path, sft_data):
    """A TrainSpec for a short CPU run; keyword arguments override any field."""
    from workers.training.spec import spec_from_dict

    def make(**overrides):
        data = {
            "job_id": 1,
            "base_model": "builtin:tiny",
            "data_path": str(sft_data),
            "output_dir": str(tmp_path / "out"),
            "finetune": "full",
            "max_steps": 8,
            "batch_size": 4,
            "learning_rate": 5e-3,
            "warmup_ratio": 0.0,
            "max_length": 96,
            "save_every": 4,
            "lora_r": 4,
            "lora_alpha": 8,
            "lora_dropout": 0.0,
        }
        data.update(overrides)
        return spec_from_dict(data)

    return make
