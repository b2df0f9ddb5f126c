"""create_experiment --estimate for every recipe: round 1's calls per stage, before anything is paid."""

import json

import pytest
from django.core.management import call_command

from apps.experiments.models import Experiment
from apps.llm.models import LLMCall, LLMEndpoint
from tests.apps.experiments.conftest import lion_config, seed_dataset
from tests.factories import DatasetFactory, InstructionFactory

pytestmark = pytest.mark.django_db


def _estimate(tmp_path, capsys, config) -> dict[str, list[str]]:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    call_command("create_experiment", "--config", str(path), "--estimate")
    out = capsys.readouterr().out
    assert not Experiment.objects.exists() and not LLMCall.objects.exists()
    assert not LLMEndpoint.objects.exists()  # inline endpoints are not created either
    return {line.split()[0]: line.split() for line in out.splitlines() if line.split()}


def test_tapir_bounds_what_it_cannot_know_yet(llm_server, tmp_path, capsys):
    dataset = seed_dataset()
    n = dataset.size
    config = lion_config(llm_server, dataset, recipe="tapir", review={})
    config["endpoints"]["classifier"] = {**config["endpoints"]["judge"], "name": "clf", "model": "classifier-x"}
    config["params"] = {"rounds": 2, "seeds_per_round": 4, "resample_total": 6, "expansions_per_seed": 2}
    rows = _estimate(tmp_path, capsys, config)
    assert rows["teacher_seeds"][2] == str(n) and rows["judge"][2] == str(2 * n)
    assert rows["classify_llm"][2] == str(n)  # at most: only the unsure items are asked
    assert rows["expand"][2] == "12" and rows["style"][2] == str(4 + 12)
    assert llm_server.stats().requests == 0


def test_step_by_step_asks_once_per_labelled_example(llm_server, tmp_path, capsys):
    dataset = DatasetFactory(name="svamp-mini")
    for i in range(5):
        InstructionFactory(dataset=dataset, text=f"Tom has {i} apples and buys 2. How many?", gold_label=f"{i} + 2")
    InstructionFactory(dataset=dataset, text="An unlabelled problem.")
    config = lion_config(llm_server, dataset, recipe="step_by_step", review={})
    config["endpoints"] = {"teacher": config["endpoints"]["teacher"]}
    config["params"] = {"dataset_kind": "svamp"}
    rows = _estimate(tmp_path, capsys, config)
    assert rows["rationales"][2] == "5" and rows["total"][1] == "5"


def test_mos_pays_only_for_teacher_answers(llm_server, tmp_path, capsys):
    skills = [DatasetFactory(name=f"skill-{k}") for k in range(2)]
    for dataset in skills:
        for i in range(3):
            InstructionFactory(dataset=dataset, text=f"{dataset.name} task {i}", reference_output="done")
    config = lion_config(llm_server, skills[0], recipe="mos", review={})
    del config["dataset"]
    config["datasets"] = [{"name": d.name} for d in skills]
    config["endpoints"] = {"teacher": config["endpoints"]["teacher"]}
    config["params"] = {"teacher_answers": True}
    rows = _estimate(tmp_path, capsys, config)
    assert rows["teacher_answers"][2] == "6"
    config["endpoints"] = {}
    config["params"] = {"teacher_answers": False}
    rows = _estimate(tmp_path, capsys, config)
    assert "teacher_answers" not in rows and rows["total"][1] == "0"
