"""create_experiment and run_experiment from the command line."""

import json

import pytest
from django.core.management import CommandError, call_command

from apps.experiments.models import Experiment, StageRun
from apps.experiments.services import experiment_start
from apps.llm.models import LLMCall
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset

pytestmark = pytest.mark.django_db


def _write(tmp_path, config, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


def test_create_experiment_creates_once_and_refuses_a_changed_config(llm_server, tmp_path, capsys):
    config = lion_config(llm_server, seed_dataset(), name="cli-lion")
    call_command("create_experiment", "--config", _write(tmp_path, config))
    experiment = Experiment.objects.get(name="cli-lion")
    assert experiment.config_hash and experiment.status == "draft"
    assert StageRun.objects.filter(round__experiment=experiment).count() == 10
    call_command("create_experiment", "--config", _write(tmp_path, config))
    assert "already exists with this config" in capsys.readouterr().out
    changed = {**config, "params": {**config["params"], "tau": 2.0}}
    with pytest.raises(CommandError, match="already exists with another config"):
        call_command("create_experiment", "--config", _write(tmp_path, changed))
    assert Experiment.objects.count() == 1
    assert Experiment.objects.get().config["params"]["tau"] == 1.0


def test_a_bad_config_names_the_key_and_creates_nothing(llm_server, tmp_path):
    config = lion_config(llm_server, seed_dataset())
    config["params"]["tau"] = "high"
    with pytest.raises(CommandError, match=r"params\.tau"):
        call_command("create_experiment", "--config", _write(tmp_path, config))
    assert not Experiment.objects.exists()


def test_the_estimate_prints_each_stage_and_pays_nothing(llm_server, tmp_path, capsys):
    dataset = seed_dataset()
    config = lion_config(llm_server, dataset, name="cli-estimate")
    call_command("create_experiment", "--config", _write(tmp_path, config), "--estimate")
    out = capsys.readouterr().out
    assert not Experiment.objects.exists() and not LLMCall.objects.exists()
    assert llm_server.stats().requests == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()}
    n = dataset.size
    assert rows["teacher_train"][2] == str(n) and rows["teacher_train"][3] == "0"  # calls, in ledger
    assert rows["judge"][2] == str(2 * n)
    assert rows["generate"][2] == str(config["params"]["new_per_round"])
    assert rows["teacher_cache"][3] == str(n)  # served from the ledger

    # Once the teacher has answered, the estimate counts those requests as already paid.
    call_command("create_experiment", "--config", _write(tmp_path, config))
    experiment = Experiment.objects.get(name="cli-estimate")
    experiment_start(experiment_id=experiment.pk)
    drive(experiment, until=lambda e: e.status == "waiting_approval", train=False)
    call_command("create_experiment", "--config", _write(tmp_path, {**config, "name": "other"}), "--estimate")
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines() if line.split()}
    assert rows["teacher_train"][3] == str(n)


def test_run_experiment_fails_with_the_reason(llm_server, tmp_path):
    with pytest.raises(CommandError, match="No experiment named"):
        call_command("run_experiment", "nope", "--no-worker")
    call_command("create_experiment", "--config", _write(tmp_path, lion_config(llm_server, seed_dataset(), name="x")))
    Experiment.objects.filter(name="x").update(status="failed", status_reason="Stage 'judge' failed: boom")
    with pytest.raises(CommandError, match="boom"):
        call_command("run_experiment", "x", "--no-worker")
