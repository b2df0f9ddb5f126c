"""TrainSpec: defaults, round trip through JSON, and every problem named by its field."""

import json

import pytest

from workers.training.spec import SpecError, TrainSpec, load_spec, spec_from_dict

REQUIRED = {"job_id": 3, "base_model": "builtin:tiny", "data_path": "d.jsonl", "output_dir": "out"}


def test_defaults_and_round_trip(tmp_path):
    spec = spec_from_dict(REQUIRED)
    assert (spec.finetune, spec.method, spec.lr_schedule, spec.packing, spec.bf16) == (
        "lora",
        "sft",
        "cosine",
        True,
        "auto",
    )
    spec.save(tmp_path / "spec.json")
    assert load_spec(tmp_path / "spec.json") == spec == TrainSpec(**REQUIRED)


def test_every_problem_is_listed_with_its_field():
    with pytest.raises(SpecError) as caught:
        spec_from_dict(
            {"job_id": -1, "base_model": "builtin:tiny", "epochs": 0, "packing": "yes", "lr_schedule": "step"}
        )
    fields = [field for field, _ in caught.value.problems]
    assert fields == ["data_path", "output_dir", "job_id", "lr_schedule", "epochs", "packing"]
    assert "epochs: expected a number in (0.0, 1000.0], got 0" in str(caught.value)


def test_method_params_are_checked_against_the_method():
    with pytest.raises(SpecError, match=r"method_params.alpha: expected a number in \[0.0, 1.0\], got 2"):
        spec_from_dict({**REQUIRED, "method": "step_by_step", "method_params": {"alpha": 2}})
    with pytest.raises(SpecError, match=r"method_params.beta: unknown for method 'step_by_step'"):
        spec_from_dict({**REQUIRED, "method": "step_by_step", "method_params": {"beta": 0.5}})
    with pytest.raises(SpecError, match=r"method_params: MoSConfig.update_every must be an integer >= 1"):
        spec_from_dict({**REQUIRED, "method": "mos", "method_params": {"update_every": 0}})
    spec = spec_from_dict(
        {**REQUIRED, "method": "mos", "method_params": {"reward": "diff", "datasets": ["a", "b"], "target": "b"}}
    )
    assert spec.method_params["target"] == "b"


def test_unreadable_files_are_spec_errors(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(SpecError, match="is not valid JSON"):
        load_spec(tmp_path / "broken.json")
    with pytest.raises(SpecError, match="spec: cannot read"):
        load_spec(tmp_path / "missing.json")
    (tmp_path / "list.json").write_text(json.dumps([1]))
    with pytest.raises(SpecError, match="expected a JSON object"):
        load_spec(tmp_path / "list.json")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tau": 0}, 'method_params.tau: expected a number above 0 or "inf", got 0'),
        ({"tau": "hot"}, "method_params.tau: expected a number above 0"),
        ({"datasets": ["a", "b"], "weights": [1.0, -2]}, "method_params.weights: expected a list of numbers above 0"),
        ({"datasets": ["a", "b"], "weights": [1.0]}, "method_params.weights: needs `datasets` and one weight"),
        ({"weights": [1.0, 2.0]}, "method_params.weights: needs `datasets`"),
    ],
)
def test_mos_start_parameters_are_checked(params, message):
    with pytest.raises(SpecError) as caught:
        spec_from_dict({**REQUIRED, "method": "mos", "method_params": params})
    assert message in str(caught.value)


def test_mos_start_parameters_pass_when_well_formed():
    params = {"datasets": ["a", "b"], "tau": "inf", "weights": [None, 2]}
    assert spec_from_dict({**REQUIRED, "method": "mos", "method_params": params}).method_params == params
