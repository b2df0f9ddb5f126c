"""Reproducible experiments: the same config over the same ledger, under a fresh experiment name, pays for
nothing and writes the same rows (the same plans, verdicts, samples, labels, snapshots and their hashes) in
every recipe; every random choice comes from config.seed, so another seed draws other samples."""

import ast
from pathlib import Path

import pytest

from apps.experiments.models import Experiment, SeedSelection, Snapshot, StageRun
from apps.experiments.recipes import RECIPES
from apps.experiments.services import experiment_create, experiment_start
from apps.llm.models import LLMCall, LLMCallUse
from apps.reviews.models import ReviewTask
from apps.training.models import TrainingJob
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset
from tests.apps.experiments.rows import experiment_rows
from tests.apps.experiments.test_mos_round import mos_config, skill
from tests.apps.experiments.test_step_by_step_round import PROBLEMS
from tests.apps.experiments.test_step_by_step_round import config as step_by_step_config
from tests.apps.experiments.test_tapir_round import tapir_config, tapir_dataset
from tests.conftest import REPO_ROOT
from tests.factories import DatasetFactory, InstructionFactory

pytestmark = pytest.mark.django_db


def _lion(server, name, seed):
    config = lion_config(server, seed_dataset(), name=name, params={"rounds": 2, "new_per_round": 7})
    return {**config, "seed": seed}


def _tapir(server, name, seed):
    config = tapir_config(server, tapir_dataset(), name=name, params={"seeds_per_round": 5})
    return {**config, "seed": seed}


def _step_by_step(server, name, seed):
    dataset = DatasetFactory(size=len(PROBLEMS))
    for text, gold in PROBLEMS:
        InstructionFactory(dataset=dataset, text=text, gold_label=gold)
    return {**step_by_step_config(server, dataset, name=name), "seed": seed}


def _mos(server, name, seed):
    teacher = {"base_url": server.url, "model": "teacher-big", "name": f"{name}-teacher"}
    config = mos_config([skill("alpha"), skill("beta")], endpoints={"teacher": teacher}, teacher_answers=True)
    return {**config, "name": name, "seed": seed, "review": {"answers": "sample:0.3"}}


CONFIGS = {"lion": _lion, "tapir": _tapir, "step_by_step": _step_by_step, "mos": _mos}


def _run(config: dict) -> Experiment:
    experiment = experiment_create(config=config)
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    experiment = drive(experiment)
    assert experiment.status == "finished", experiment.status_reason
    return experiment


def test_every_recipe_has_a_config_here():
    assert set(RECIPES) == set(CONFIGS)


@pytest.mark.parametrize("recipe", list(CONFIGS))
def test_the_same_config_under_a_fresh_name_pays_nothing_and_writes_the_same_rows(recipe, llm_server):
    config = CONFIGS[recipe](llm_server, f"{recipe}-first", 1234)
    first = _run(config)
    calls, requests = LLMCall.objects.count(), llm_server.stats().requests
    assert requests > 0
    again = _run({**config, "name": f"{recipe}-again"})
    assert (LLMCall.objects.count(), llm_server.stats().requests) == (calls, requests)
    assert not LLMCallUse.objects.filter(experiment=again, paid=True).exists()
    before, after = experiment_rows(first), experiment_rows(again)
    for model in before:
        assert after[model] == before[model], model

    def hashes(experiment) -> list[str]:
        snapshots = Snapshot.objects.filter(round__experiment=experiment).order_by("round__index")
        return list(snapshots.values_list("hash", flat=True))

    assert hashes(again) and hashes(again) == hashes(first)
    # The trainer is seeded from the config too.
    assert {job.spec.get("seed") for job in TrainingJob.objects.filter(round__experiment=again)} == {1234}


def _plans(experiment) -> list:
    """The generation plans by seed text, and which subjects each gate sampled."""
    out = []
    for run in StageRun.objects.filter(round__experiment=experiment, kind="generate").order_by("round__index"):
        texts = dict(experiment.pool_members.values_list("instruction_id", "instruction__text"))
        out.append([(texts[seed], origin, k) for seed, origin, k in run.state["plan"]])
    return out


def _samples(experiment) -> list:
    """Which judged instructions each round's verdict gate sampled for review."""
    tasks = ReviewTask.objects.filter(round__experiment=experiment, kind=ReviewTask.Kind.VERDICT)
    return sorted((t.round.index, t.subject.instruction.text) for t in tasks)


def test_another_seed_draws_other_lion_samples_and_the_same_seed_the_same(llm_server):
    dataset = seed_dataset()
    make = lambda name, seed: {**lion_config(llm_server, dataset, name=name, params={"new_per_round": 7}), "seed": seed}  # noqa: E731
    one, same, other = _run(make("seeded", 1234)), _run(make("seeded-again", 1234)), _run(make("reseeded", 99))
    assert (one.seed, other.seed) == (1234, 99)
    # Seven new instructions from the hard and easy seeds: a seeded draw of which seeds (and of which
    # verdicts the gate samples); the verdicts themselves come from the ledger and do not change.
    assert _plans(one) == _plans(same) and _samples(one) == _samples(same)
    assert _plans(one)[0] != _plans(other)[0]  # round 1: the same verdicts, another draw of seeds
    round_1 = [text for index, text in _samples(one) if index == 1]
    assert round_1 != [text for index, text in _samples(other) if index == 1] and round_1
    assert TrainingJob.objects.filter(round__experiment=other).first().spec["seed"] == 99


def test_another_seed_selects_other_tapir_seeds(llm_server):
    dataset = tapir_dataset()
    picks = {}
    for name, seed in (("tapir-a", 1234), ("tapir-b", 1234), ("tapir-c", 7)):
        config = {**tapir_config(llm_server, dataset, name=name, params={"seeds_per_round": 5, "rounds": 1})}
        experiment = _run({**config, "seed": seed})
        picks[name] = sorted(
            SeedSelection.objects.filter(round__experiment=experiment).values_list("instruction__text", "hard")
        )
    assert picks["tapir-a"] == picks["tapir-b"]
    assert picks["tapir-a"] != picks["tapir-c"]


def _on_the_stage_rng(node: ast.Attribute) -> bool:
    """`ctx.rng().choice(...)`, `rng_for(...).choice(...)` or `rng.choice(...)`: a seeded generator's draw."""
    value = node.value
    if isinstance(value, ast.Call):
        func = value.func
        return (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) in ("rng", "rng_for")
    return isinstance(value, ast.Name) and value.id == "rng"


def test_no_stage_draws_randomness_outside_the_seeded_generator():
    """Every draw in the engine goes through machine.rng_for (config seed, round, stage name)."""
    banned = {"random", "secrets"}
    found = []
    for path in sorted((REPO_ROOT / "apps" / "experiments").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found += [f"{path.name}: import {n}" for n in names if n.split(".")[0] in banned]
            if isinstance(node, ast.Attribute) and node.attr in ("random", "default_rng", "shuffle", "choice"):
                if Path(path).name == "machine.py" or _on_the_stage_rng(node):
                    continue  # rng_for itself, and draws from the generator it gives
                found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: .{node.attr}")
    assert not found, found
