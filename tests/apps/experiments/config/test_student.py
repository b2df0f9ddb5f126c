"""`student:` keeps the trainer's defaults (workers.training.spec.TrainSpec) without importing the trainer,
which loads torch; these tests hold the two tables together."""

import dataclasses

from apps.experiments.config import STUDENT, parse_config, student_defaults
from tests.apps.experiments.config.samples import LION, patched
from workers.training.spec import TrainSpec, spec_from_dict

# TrainSpec fields the engine sets (never written under student:); `model` is TrainSpec.base_model.
ENGINE_OWNED = {"job_id", "base_model", "data_path", "output_dir", "resume_from", "method", "method_params", "seed"}
ENGINE_OWNED |= {"eval_data_path"}


def test_every_trainer_hyper_parameter_is_a_student_key_with_the_trainers_default():
    spec_fields = {field.name: field for field in dataclasses.fields(TrainSpec)}
    settable = set(spec_fields) - ENGINE_OWNED
    assert set(STUDENT) - {"model"} == settable
    defaults = student_defaults()
    for name in settable:
        assert defaults[name] == spec_fields[name].default, name


def test_a_canonical_student_section_is_a_valid_train_spec():
    config = parse_config(
        patched(
            LION,
            {
                "student": {
                    "model": "builtin:smollm2-135m",
                    "finetune": "full",
                    "bf16": True,
                    "lora_target_modules": ["q_proj", "v_proj"],
                    "epochs": 3,
                    "max_steps": 100,
                }
            },
        )
    )
    student = dict(config.student)
    assert student["bf16"] == "true" and student["epochs"] == 3.0
    model = student.pop("model")
    spec = spec_from_dict(
        {**student, "base_model": model, "job_id": 1, "data_path": "d.jsonl", "output_dir": "out", "seed": config.seed}
    )
    assert spec.finetune == "full" and spec.lora_target_modules == ["q_proj", "v_proj"]


def test_the_config_seed_fits_the_trainers_seed():
    config = parse_config(patched(LION, {"seed": 2**32 - 1}))
    assert spec_from_dict({"job_id": 1, "base_model": "m", "data_path": "d", "output_dir": "o", "seed": config.seed})
