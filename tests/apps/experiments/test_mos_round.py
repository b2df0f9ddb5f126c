"""Mixture-of-Skills end to end: two skills, their held-out sets and per-skill caps, the snapshot's
`skill:<dataset>` items, the trainer spec's MoS parameters, and a real builtin:tiny training run through
apps.training (the trainer subprocess on CPU, a few steps) whose p_ψ per dataset and held-out figures per
skill come back into the round. With teacher answers, the answers gate and reviewers' decisions."""

import itertools
import json
import math
from pathlib import Path

import pytest

from apps.core.roles import Role
from apps.datasets.models import Instruction
from apps.experiments.config import parse_config
from apps.experiments.models import Experiment, PoolMember, Round, Snapshot, StageRun
from apps.experiments.services import experiment_approve_and_train, experiment_create, experiment_start
from apps.judging.models import Response
from apps.reviews.models import ReviewTask
from apps.reviews.services import review_decide
from apps.training.models import JobStatus, TrainingJob, TrainingMetric
from apps.training.running import training_job_run
from tests.apps.experiments.conftest import drive
from tests.factories import DatasetFactory, InstructionFactory, UserFactory

pytestmark = pytest.mark.django_db
E = Experiment.Status
_names = itertools.count()


def skill(prefix: str, n: int = 12, answered: bool = True):
    dataset = DatasetFactory(name=f"{prefix}-{next(_names)}")
    for k in range(n):
        InstructionFactory(
            dataset=dataset,
            text=f"{prefix} question number {k}: what is {k} plus {k}?",
            reference_output=f"{prefix} answer {k}: {2 * k}." if answered else "",
        )
    dataset.size = n
    dataset.save(update_fields=["size"])
    return dataset


def mos_config(datasets, *, endpoints=None, **params) -> dict:
    return {
        "name": f"mos-{next(_names)}",
        "recipe": "mos",
        "datasets": [{"name": datasets[0].name}, {"name": datasets[1].name, "weight": 2.0}],
        "endpoints": endpoints or {},
        "student": {
            "model": "builtin:tiny",
            "finetune": "full",
            "max_steps": 4,
            "batch_size": 2,
            "max_length": 64,
            "save_every": 100,
        },
        "params": {"update_every": 2, "max_items": 8, **params},
        "review": {"answers": "all"},
        "seed": 1234,
    }


def members(experiment, pool, dataset) -> set[int]:
    qs = PoolMember.objects.filter(experiment=experiment, pool=pool, instruction__dataset=dataset)
    return set(qs.values_list("instruction_id", flat=True))


def test_two_skills_train_for_real_and_report_p_psi_and_held_out_figures_per_dataset():
    arith, chat = skill("arith"), skill("chat")
    config = mos_config([arith, chat])
    experiment = experiment_create(config=config)
    assert [s.name for s in StageRun.objects.filter(round__experiment=experiment).order_by("position")] == [
        "train",
        "skill_eval",
    ]
    # Held out: a seeded tenth of each skill (1 of 12), never trained on; the rest capped at 8 per skill.
    for dataset in (arith, chat):
        held, train = members(experiment, "heldout", dataset), members(experiment, "train", dataset)
        assert len(held) == 1 and len(train) == 8 and not held & train
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    experiment = drive(experiment, train=False)
    assert experiment.status == E.TRAINING, experiment.status_reason
    round_ = Round.objects.get(experiment=experiment)

    snapshot = Snapshot.objects.get(round=round_)
    assert snapshot.counts["by_kind"] == {f"skill:{arith.name}": 8, f"skill:{chat.name}": 8}
    for item in snapshot.items.select_related("instruction"):
        assert item.kind == f"skill:{item.instruction.dataset.name}" and item.response_id is None
        assert (item.prompt, item.target) == (item.instruction.text, item.instruction.reference_output)
        assert item.instruction_id in members(experiment, "train", item.instruction.dataset)

    [job] = TrainingJob.objects.filter(round=round_)
    expected = parse_config(config).algorithm_configs()["mos"]
    assert job.spec["method"] == "mos"
    assert job.spec["method_params"] == {
        **expected.to_dict(),
        "datasets": [arith.name, chat.name],
        "tau": 1.0,
        "weights": [None, 2.0],
    }
    assert (job.spec["method_params"]["update_every"], job.spec["method_params"]["seed"]) == (2, 1234)
    rows = [json.loads(line) for line in Path(job.spec["data_path"]).read_text().splitlines()]
    assert len(rows) == 16 and all(row["kind"] == f"skill:{row['dataset']}" for row in rows)
    held_rows = [json.loads(line) for line in Path(job.spec["eval_data_path"]).read_text().splitlines()]
    held_ids = members(experiment, "heldout", arith) | members(experiment, "heldout", chat)
    held = Instruction.objects.filter(pk__in=held_ids)
    assert sorted((r["dataset"], r["target"]) for r in held_rows) == sorted(
        (i.dataset.name, i.reference_output) for i in held
    )

    done = training_job_run(job_id=job.pk)  # the real trainer, as a gpu worker runs it
    assert done.status == JobStatus.SUCCEEDED, done.error
    names = set(TrainingMetric.objects.filter(job=job).values_list("name", flat=True))
    assert {"mos_p.0", "mos_p.1", "loss"} <= names
    for step in range(1, 5):
        p = TrainingMetric.objects.filter(job=job, step=step, name__startswith="mos_p.").values_list("value", flat=True)
        assert len(p) == 2 and sum(p) == pytest.approx(1.0)
    # p_psi starts where the config says: 8 rows each, chat weighted 2, tau 1 -> 8 : 16 (the first update is
    # at step 2, so step 1 still shows the start).
    start = dict(TrainingMetric.objects.filter(job=job, step=1, name__startswith="mos_p.").values_list("name", "value"))
    assert [start["mos_p.0"], start["mos_p.1"]] == pytest.approx([1 / 3, 2 / 3], abs=1e-9)

    experiment = drive(experiment)
    assert experiment.status == E.FINISHED, experiment.status_reason
    round_.refresh_from_db()
    assert round_.metrics["evaluated"] is True and round_.metrics["training_job"] == job.pk
    table = round_.metrics["skills"]
    assert sorted(table, key=lambda name: table[name]["index"]) == [arith.name, chat.name]
    last = {
        name: TrainingMetric.objects.filter(job=job, name=f"mos_p.{figures['index']}").order_by("-step").first().value
        for name, figures in table.items()
    }
    for name, figures in table.items():
        assert (figures["train"], figures["heldout"]) == (8, 1)
        assert figures["loss"] > 0 and figures["perplexity"] == pytest.approx(math.exp(figures["loss"]))
        assert figures["p"] == pytest.approx(last[name], abs=1e-6)


def test_teacher_answers_are_gated_and_reviewers_decide_what_trains(llm_server):
    arith, chat = skill("arith", answered=False), skill("chat", answered=False)
    teacher = {"base_url": llm_server.url, "model": "teacher-mos", "name": f"t-{next(_names)}", "max_concurrency": 4}
    config = mos_config([arith, chat], teacher_answers=True, max_items=4, endpoints={"teacher": teacher})
    experiment = experiment_create(config=config)
    experiment_start(experiment_id=experiment.pk)
    experiment = drive(experiment, train=False)
    assert experiment.status == E.WAITING_REVIEW, experiment.status_reason
    round_ = Round.objects.get(experiment=experiment)
    names = list(StageRun.objects.filter(round=round_).order_by("position").values_list("name", flat=True))
    assert names == ["teacher_answers", "teacher_heldout", "gate_answers", "train", "skill_eval"]
    # Without recorded answers every item is usable: 12 → 1 held out, 4 trained per skill, all answered.
    answers = {r.instruction_id: r for r in Response.objects.filter(round=round_, role="teacher")}
    expected = set()
    for dataset in (arith, chat):
        assert len(members(experiment, "train", dataset)) == 4 and len(members(experiment, "heldout", dataset)) == 1
        expected |= members(experiment, "train", dataset) | members(experiment, "heldout", dataset)
    assert set(answers) == expected
    tasks = list(ReviewTask.objects.filter(round=round_, kind="answer").order_by("subject_id"))
    assert {t.subject_id for t in tasks} == {r.pk for r in answers.values()}

    train_ids = sorted(members(experiment, "train", arith) | members(experiment, "train", chat))
    rejected, edited = answers[train_ids[0]], answers[train_ids[1]]
    reviewer = UserFactory(role=Role.REVIEWER)
    for task in tasks:
        decision, text = "accept", ""
        if task.subject_id == rejected.pk:
            decision = "reject"
        elif task.subject_id == edited.pk:
            decision, text = "edit", "A reviewer's better answer."
        review_decide(reviewer=reviewer, task_id=task.pk, decision=decision, edited_text=text)
    experiment = drive(experiment, train=False)
    assert experiment.status == E.WAITING_APPROVAL
    job = experiment_approve_and_train(experiment_id=experiment.pk, by=UserFactory(role=Role.OPERATOR))
    items = {i.instruction_id: i for i in Snapshot.objects.get(round=round_).items.all()}
    assert set(items) == set(train_ids) - {rejected.instruction_id}
    assert items[edited.instruction_id].target == "A reviewer's better answer."
    for pk, item in items.items():
        if pk != edited.instruction_id:
            assert (item.target, item.response_id) == (answers[pk].text, answers[pk].pk)
    held_rows = [json.loads(line) for line in Path(job.spec["eval_data_path"]).read_text().splitlines()]
    assert len(held_rows) == 2 and {r["target"] for r in held_rows} <= {r.text for r in answers.values()}

    experiment = drive(experiment)  # training reported done without a trainer: nothing measured
    assert experiment.status == E.FINISHED, experiment.status_reason
    round_.refresh_from_db()
    assert round_.metrics["evaluated"] is False
    # The rejected answer was the first skill's lowest id.
    assert {name: f["train"] for name, f in round_.metrics["skills"].items()} == {arith.name: 3, chat.name: 4}
