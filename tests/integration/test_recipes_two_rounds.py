"""Each recipe from a plain shell: `create_experiment --config`, then `run_experiment <name> --until done
--auto-approve` as a subprocess, which finds no worker consuming the queues and starts its own Celery
workers (default + llm, and a solo gpu worker). Every LLM role is the local test server over HTTP; the
student really trains (builtin:tiny through workers.training.run, a few steps on CPU). It runs on the
database of the run: SQLite and the file broker by default, PostgreSQL and Redis where DATABASE_URL and
CELERY_BROKER_URL are set (CI's first phase).

After the run the invariants are recomputed from the rows (tests/integration/recipe_checks.py): counts per
stage, judgments in both orders, the hard rule, the novelty filter, TAPIR's seeds and task ratios, the
step-by-step pairs. Then the same config under a fresh name runs again: it must pay for nothing (no new
ledger call, no new request at the server) and write the same rows and snapshot hashes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.datasets.models import Instruction
from apps.experiments.models import Experiment, PoolMember, Round, Snapshot
from apps.judging.models import Response
from apps.llm.models import LLMCall, LLMCallUse
from apps.training.models import TrainingJob
from tests.apps.experiments.conftest import lion_config, seed_dataset
from tests.apps.experiments.rows import experiment_rows
from tests.apps.experiments.test_mos_round import mos_config, skill
from tests.apps.experiments.test_step_by_step_round import PROBLEMS
from tests.apps.experiments.test_step_by_step_round import config as step_by_step_config
from tests.apps.experiments.test_tapir_round import STAGES as TAPIR_STAGES
from tests.apps.experiments.test_tapir_round import tapir_config, tapir_dataset
from tests.conftest import REPO_ROOT
from tests.factories import DatasetFactory, InstructionFactory
from tests.integration.recipe_checks import (
    check_judgments,
    check_novelty,
    check_stage_counts,
    check_tapir_selection,
)
from tests.integration.worker import worker_env
from tests.llm_server.server import ServerThread
from workers.algorithms.step_by_step import parse_rationale

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# A few optimiser steps of the real trainer: enough to write weights and an artifact per round.
STUDENT = {"model": "builtin:tiny", "finetune": "full", "max_steps": 3, "batch_size": 2, "max_length": 64}
LION_STAGES = [
    "teacher_train",
    "train",
    "student_cache",
    "teacher_cache",
    "judge",
    "discriminate",
    "gate_verdicts",
    "generate",
    "gate_generated",
    "pools",
]
TIMEOUT_S = 240


@pytest.fixture
def server():
    with ServerThread() as running:
        yield running


def _env(tmp_path: Path) -> dict:
    var = Path(os.environ.get("RETORT_VAR_DIR", REPO_ROOT / "var" / "test")).resolve()
    return worker_env(
        RETORT_TRAINING_ROOT=tmp_path / "training",
        RETORT_MODEL_CACHE=var / "models",  # builtin:tiny is built once and kept
        RETORT_BROKER_POLL_S="0.1",  # the file broker's hops between workers (SQLite mode)
        RETORT_TRAINING_HEARTBEAT_S="0.5",
        RETORT_LLM_RETRY_BASE_S="0.01",
        RETORT_LLM_RETRY_MAX_S="0.05",
    )


def _run(tmp_path: Path, config: dict) -> Experiment:
    """create_experiment in this process, run_experiment as a shell would; returns the finished experiment."""
    path = tmp_path / f"{config['name']}.json"
    path.write_text(json.dumps(config))
    call_command("create_experiment", "--config", str(path))
    command = [sys.executable, "manage.py", "run_experiment", config["name"], "--until", "done", "--auto-approve"]
    done = subprocess.run(
        [*command, "--timeout", str(TIMEOUT_S)],
        cwd=REPO_ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S + 60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Started a worker for default, llm" in done.stderr and "Started a worker for gpu" in done.stderr
    assert "(done reached)" in done.stdout
    experiment = Experiment.objects.get(name=config["name"])
    assert experiment.status == Experiment.Status.FINISHED, experiment.status_reason
    return experiment


def _hashes(experiment) -> list[str]:
    return list(
        Snapshot.objects.filter(round__experiment=experiment).order_by("round__index").values_list("hash", flat=True)
    )


def _again_pays_nothing(tmp_path, server, config: dict, first: Experiment) -> Experiment:
    """The same config under a fresh name, over the same ledger: nothing sent, nothing paid, the same rows."""
    calls, requests = LLMCall.objects.count(), server.stats().requests
    assert requests > 0
    again = _run(tmp_path, {**config, "name": f"{config['name']}-again"})
    assert (LLMCall.objects.count(), server.stats().requests) == (calls, requests)
    assert LLMCallUse.objects.filter(experiment=again).exists()
    assert not LLMCallUse.objects.filter(experiment=again, paid=True).exists()
    assert _hashes(again) == _hashes(first) and all(_hashes(first))
    before, after = experiment_rows(first), experiment_rows(again)
    for model in before:
        assert after[model] == before[model], model
    # Each round trained again from its own frozen snapshot, for real.
    assert TrainingJob.objects.filter(round__experiment=again, status="succeeded").count() == len(_hashes(first))
    return again


def _sent_once(server, experiment) -> None:
    """Every finished ledger call of the experiment reached the server exactly once."""
    sent = [h for _, h, outcome in server.stats().events if outcome == 200]
    ledger = LLMCall.objects.filter(uses__experiment=experiment, endpoint__base_url=server.url).distinct()
    assert sorted(sent) == sorted(ledger.values_list("request_hash", flat=True))


def test_lion_runs_two_rounds_and_a_rerun_pays_nothing(tmp_path, server):
    dataset = seed_dataset(name="lion-two-rounds-seeds")
    config = lion_config(
        server,
        dataset,
        name="lion-two-rounds",
        # tau 2.5: gaps come in halves and the test server's judge gives some of exactly 2.5, so the
        # rule's edge (gap == tau is hard) is met.
        params={"rounds": 2, "new_per_round": 12, "batch_size": 5, "tau": 2.5},
        student=STUDENT,
    )
    first = _run(tmp_path, config)
    _sent_once(server, first)
    assert first.config["params"]["hard_rule"] == "gap >= tau"
    check_stage_counts(first, LION_STAGES, rounds=2)
    hard, edge = check_judgments(first, threshold=2.5, strict=False)
    assert hard and edge, (hard, edge)  # verdicts were hard, some at exactly tau
    kept, rejected = check_novelty(first, "generate")
    assert kept and rejected, (kept, rejected)  # the filter both kept and refused candidates

    # The pools moved: round 2 trains on what round 1 generated, and the cache pool grew by it.
    seeds = set(Instruction.objects.filter(dataset=dataset).values_list("pk", flat=True))
    made_1 = set(
        Instruction.objects.filter(dataset__owner_experiment=first, created_in_round__index=1).values_list(
            "pk", flat=True
        )
    )
    members = PoolMember.objects.filter(experiment=first)
    assert set(members.filter(pool="train", joined_round=2).values_list("instruction_id", flat=True)) == made_1
    assert set(members.filter(pool="cache").values_list("instruction_id", flat=True)) >= seeds | made_1
    for round_ in Round.objects.filter(experiment=first):
        train = set(members.filter(pool="train", joined_round=round_.index).values_list("instruction_id", flat=True))
        assert {i.instruction_id for i in round_.snapshot.items.all()} == train
    _again_pays_nothing(tmp_path, server, config, first)


def test_tapir_runs_two_rounds_and_a_rerun_pays_nothing(tmp_path, server):
    config = tapir_config(server, tapir_dataset(), name="tapir-two-rounds", student=STUDENT)
    assert config["params"]["rounds"] == 2 and config["params"]["seeds_per_round"] == 12
    first = _run(tmp_path, config)
    _sent_once(server, first)
    params = first.config["params"]
    assert params["hard_rule"] == "gap > threshold"
    check_stage_counts(first, TAPIR_STAGES, rounds=2)
    hard, edge = check_judgments(first, threshold=float(params["hard_threshold"]), strict=True)
    assert hard and edge, (hard, edge)  # verdicts were hard, some easy at exactly the threshold
    check_tapir_selection(first)
    kept, _ = check_novelty(first, "expand")
    assert kept
    # The snapshot trains on exactly the styled answers of the round's train pool.
    for round_ in Round.objects.filter(experiment=first):
        styled = {r.instruction_id: r.text for r in Response.objects.filter(round=round_, stage="style")}
        assert {i.instruction_id: i.target for i in round_.snapshot.items.all()} == styled
    _again_pays_nothing(tmp_path, server, config, first)


def test_step_by_step_runs_its_round_and_a_rerun_pays_nothing(tmp_path, server):
    """Distilling step-by-step is one pass (rationales → gate → multitask training): the config takes
    `rounds: 1` and a second round would have no stages (apps/experiments/recipes/step_by_step.py), so the
    one round is what there is to run."""
    dataset = DatasetFactory(name="sbs-two-rounds-problems", size=len(PROBLEMS))
    for text, gold in PROBLEMS:
        InstructionFactory(dataset=dataset, text=text, gold_label=gold)
    config = {**step_by_step_config(server, dataset, name="sbs-two-rounds", batch_size=2), "student": STUDENT}
    first = _run(tmp_path, config)
    _sent_once(server, first)
    check_stage_counts(first, ["rationales", "gate_rationales", "train"], rounds=1)
    # The pairs: predict → the gold label, explain → the rationale, re-parsed from the ledger's reply.
    [round_] = Round.objects.filter(experiment=first)
    rationales = list(Response.objects.filter(round=round_, role="rationale").select_related("instruction", "llm_call"))
    assert len(rationales) == len(PROBLEMS) - 1  # the problem without two numbers gets no usable reply
    pairs = {(i.instruction_id, i.kind): (i.prompt, i.target) for i in round_.snapshot.items.all()}
    assert len(pairs) == 2 * len(rationales)
    for response in rationales:
        parsed = parse_rationale("svamp", response.llm_call.reply)
        assert parsed.ok and (response.rationale, response.parsed_label) == (parsed.rationale, parsed.label)
        text = response.instruction.text
        assert pairs[(response.instruction_id, "predict")] == (f"predict: {text}\n", response.instruction.gold_label)
        assert pairs[(response.instruction_id, "explain")] == (f"explain: {text}\n", parsed.rationale)
    _again_pays_nothing(tmp_path, server, config, first)


def test_mixture_of_skills_runs_its_round_and_a_rerun_pays_nothing(tmp_path, server):
    """Mixture-of-Skills trains once on all its skills with the MoS sampler (teacher answers → gate → train
    → per-skill evaluation): the config takes `rounds: 1` and a second round would have no stages
    (apps/experiments/recipes/mos.py), so the one round is what there is to run."""
    teacher = {"base_url": server.url, "model": "teacher-big", "name": "mos-two-rounds-teacher", "max_concurrency": 8}
    config = mos_config([skill("alpha"), skill("beta")], endpoints={"teacher": teacher}, teacher_answers=True)
    config.update(name="mos-two-rounds", student={**config["student"], **STUDENT})
    config["params"]["batch_size"] = 3
    first = _run(tmp_path, config)
    _sent_once(server, first)
    check_stage_counts(first, ["teacher_answers", "teacher_heldout", "gate_answers", "train", "skill_eval"], rounds=1)
    # Each skill's train pool trains on the teacher's answers, under its own skill:<dataset> kind.
    [round_] = Round.objects.filter(experiment=first)
    answers = {r.instruction_id: r.text for r in Response.objects.filter(round=round_, role="teacher")}
    train = PoolMember.objects.filter(experiment=first, pool="train").select_related("instruction__dataset")
    assert {(i.instruction_id, i.kind, i.target) for i in round_.snapshot.items.all()} == {
        (m.instruction_id, f"skill:{m.instruction.dataset.name}", answers[m.instruction_id]) for m in train
    }
    assert set(round_.metrics["skills"]) == {m.instruction.dataset.name for m in train}
    _again_pays_nothing(tmp_path, server, config, first)
