"""Evaluation after each round: the evaluate stage against the local test server (real sockets, the real
gateway runner), its figures checked by hand from the stored judgments, accuracy on a labelled set, the
API, and a regression alert when a category falls from one round to the next."""

import re
from io import StringIO

import pytest
from django.core.management.base import OutputWrapper
from django.db.models import F

from apps.core.roles import Role
from apps.experiments.cli import ProgressPrinter
from apps.experiments.management.commands.run_experiment import Command
from apps.experiments.models import Evaluation, EvaluationCategory, Experiment, ExperimentDataset, Round, StageRun
from apps.experiments.services import experiment_create, experiment_start
from apps.judging.models import Judgment, Response
from apps.training.models import GenerationItem, GenerationJob
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset
from tests.factories import DatasetFactory, InstructionFactory
from tests.llm_server import replies
from workers.algorithms.evaluation import length_controlled_win_rate

pytestmark = pytest.mark.django_db
E = Experiment.Status

EVAL_ITEMS = [
    ("What is 17 times 23?", "Math"),
    ("Solve for x: 3x + 5 = 20.", "Math"),
    ("A train travels 60 km in 45 minutes. What is its speed in km/h?", "Math"),
    ("Write a haiku about the first snow of winter.", "Writing"),
    ("Draft a two-line thank-you note to a neighbour.", "Writing"),
    ("Write an opening sentence for a mystery novel.", "Writing"),
    ("Name the largest planet of the solar system.", ""),  # no category: reported under Others
]


def eval_dataset(items=EVAL_ITEMS, *, golds=None):
    dataset = DatasetFactory(name=f"eval-{DatasetFactory._meta.model.objects.count()}")
    for n, (text, category) in enumerate(items):
        InstructionFactory(dataset=dataset, text=text, task_category=category, gold_label=(golds[n] if golds else ""))
    dataset.size = len(items)
    dataset.save(update_fields=["size"])
    return dataset


def _outcome(j: Judgment) -> float | None:
    scores = (
        j.teacher_first_teacher_score,
        j.teacher_first_student_score,
        j.student_first_student_score,
        j.student_first_teacher_score,
    )
    if None in scores:
        return None
    t1, s1, s2, t2 = scores
    teacher, student = (t1 + t2) / 2, (s1 + s2) / 2
    return 1.0 if student > teacher else 0.5 if student == teacher else 0.0


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values)


def test_the_round_is_evaluated_after_training_and_the_figures_match_the_judgments(llm_server):
    evals = eval_dataset()
    config = lion_config(llm_server, seed_dataset(), params={"rounds": 1}, eval_dataset=evals.name)
    experiment = experiment_create(config=config)
    names = list(StageRun.objects.filter(round__experiment=experiment).order_by("position").values_list("name", "kind"))
    assert names[:4] == [
        ("teacher_train", "answer"),
        ("train", "train"),
        ("evaluate", "evaluate"),
        ("student_cache", "answer"),
    ]
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    experiment = drive(experiment)
    assert experiment.status == E.FINISHED, experiment.status_reason

    round_ = Round.objects.get(experiment=experiment)
    evaluation = Evaluation.objects.get(round=round_)
    ids = set(evals.instructions.values_list("pk", flat=True))
    judgments = list(Judgment.objects.filter(round=round_, kind=Judgment.Kind.EVALUATION).order_by("instruction_id"))
    assert {j.instruction_id for j in judgments} == ids
    assert not Judgment.objects.filter(round=round_, kind=Judgment.Kind.DISCRIMINATION, instruction_id__in=ids).exists()
    for j in judgments:  # both orders asked, each its own ledger call
        assert j.call_teacher_first_id and j.call_student_first_id
        assert j.call_teacher_first_id != j.call_student_first_id
        assert j.student_response.role == "student" and j.teacher_response.role == "teacher"
        assert j.student_response.stage == "evaluate" and j.verdict == Judgment.Verdict.PENDING

    # Win rate by hand: each answer's score averaged over both orders, win 1, tie 0.5, loss 0.
    outcomes = [_outcome(j) for j in judgments]
    assert evaluation.n == len(ids) == 7
    assert evaluation.judged == sum(o is not None for o in outcomes)
    assert evaluation.win_rate == pytest.approx(_mean(outcomes))
    assert (evaluation.wins, evaluation.ties, evaluation.losses) == (
        outcomes.count(1.0),
        outcomes.count(0.5),
        outcomes.count(0.0),
    )
    assert evaluation.ci_low is not None and evaluation.ci_high is not None
    assert evaluation.ci_low <= evaluation.win_rate <= evaluation.ci_high
    assert evaluation.ci_low < evaluation.ci_high  # seven mixed outcomes: a real interval, not a point

    # Per category: the instruction's task category through the vocabulary, Others for none.
    category = {j.instruction_id: j.instruction.task_category or "Others" for j in judgments}
    rows = {row.category: row for row in EvaluationCategory.objects.filter(evaluation=evaluation)}
    assert set(rows) == {"Math", "Writing", "Others"}
    for name, row in rows.items():
        mine = [o for j, o in zip(judgments, outcomes, strict=True) if category[j.instruction_id] == name]
        assert row.n == sum(o is not None for o in mine)
        assert row.win_rate == pytest.approx(_mean(mine))
        assert row.ci_low <= row.win_rate <= row.ci_high
        assert evaluation.per_category[name]["win_rate"]["rate"] == pytest.approx(row.win_rate)

    # The length-controlled rate beside the raw one, from the student-minus-teacher length differences.
    diffs = [len(j.student_response.text) - len(j.teacher_response.text) for j in judgments]
    assert len(set(diffs)) > 1
    lc = length_controlled_win_rate(outcomes, diffs)
    assert evaluation.lc_win_rate == pytest.approx(lc.win_rate)
    assert evaluation.report["length_controlled"]["raw_win_rate"] == pytest.approx(evaluation.win_rate)
    assert evaluation.accuracy is None and evaluation.labelled == 0  # no gold labels: no accuracy
    assert round_.metrics["evaluation"]["win_rate"] == pytest.approx(evaluation.win_rate)
    assert round_.metrics["evaluation"]["regressions"] == []
    # The judge's other stage went on as before: discrimination judged the cache pool only.
    assert (
        round_.metrics["discrimination"]["hard"]
        + round_.metrics["discrimination"]["easy"]
        + round_.metrics["discrimination"]["invalid"]
        == Judgment.objects.filter(round=round_, kind=Judgment.Kind.DISCRIMINATION).count()
    )


def test_evaluation_and_discrimination_judge_one_instruction_in_one_round_without_colliding(llm_server):
    seeds = seed_dataset()
    evals = eval_dataset(EVAL_ITEMS[:3])
    config = lion_config(llm_server, seeds, params={"rounds": 1}, eval_dataset=evals.name)
    experiment = experiment_create(config=config)
    # The config refuses a training dataset as the eval set; here the seeds are evaluated too, so the same
    # instruction is judged by both stages of one round.
    ExperimentDataset.objects.create(experiment=experiment, dataset=seeds, role="eval", position=9)
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    experiment = drive(experiment)
    assert experiment.status == E.FINISHED, experiment.status_reason
    round_ = Round.objects.get(experiment=experiment)
    seed_ids = set(seeds.instructions.values_list("pk", flat=True))
    evaluation = {j.instruction_id: j for j in Judgment.objects.filter(round=round_, kind="evaluation")}
    discrimination = {j.instruction_id: j for j in Judgment.objects.filter(round=round_, kind="discrimination")}
    assert set(discrimination) == seed_ids
    assert set(evaluation) == seed_ids | set(evals.instructions.values_list("pk", flat=True))
    for pk in seed_ids:
        both = evaluation[pk], discrimination[pk]
        assert both[0].pk != both[1].pk
        # One answer each per round, and the identical judge request paid once (the ledger's call).
        assert both[0].student_response_id == both[1].student_response_id
        assert both[0].call_teacher_first_id == both[1].call_teacher_first_id
        assert both[0].verdict == "pending" and both[1].verdict in ("hard", "easy", "invalid")
    assert Evaluation.objects.get(round=round_).n == len(evaluation)
    # Verdict review tasks come from discrimination judgments only.
    counts = round_.metrics["discrimination"]
    assert counts["hard"] + counts["easy"] + counts["invalid"] == len(seed_ids)


# --- the local student: generation jobs the test answers as a gpu worker would --------------------------------
def run_local(experiment, answer_for, limit=40):
    """Drive the experiment, answering each generation job's prompts with answer_for(item, round index)."""
    for _ in range(limit):
        experiment = drive(experiment)
        if experiment.status != E.RUNNING:
            return experiment
        waiting = GenerationItem.objects.filter(job__round__experiment=experiment, text__isnull=True)
        if not waiting.exists():
            return experiment
        for item in waiting.select_related("job__round"):
            item.text = answer_for(item, item.job.round.index)
            item.save(update_fields=["text"])
        GenerationJob.objects.filter(round__experiment=experiment, status__in=["queued", "running"]).update(
            status="succeeded", done_count=F("prompts_count")
        )
    raise AssertionError("the experiment kept waiting for generation")


def _instruction_id(item) -> int:
    return int(item.key.split(":")[1])


def _local_config(server, evals, **params):
    config = lion_config(server, seed_dataset(6), params={"rounds": 1, "new_per_round": 4, **params})
    config["eval_dataset"] = evals.name
    del config["endpoints"]["student"]  # the student generates with the round's checkpoint
    return config


SVAMP = [
    ("Paige planted 10 seeds in each of 45 flower beds. How many seeds did she plant?", "( 10.0 * 45.0 )"),
    ("Jack got 3 emails in the afternoon and 6 in the morning. How many in all?", "( 3.0 + 6.0 )"),
    ("A baker had 20 cakes and sold 8. How many are left?", "( 20.0 - 8.0 )"),
    ("Tom shares 12 apples among 4 friends. How many does each get?", "( 12.0 / 4.0 )"),
]


def test_accuracy_on_a_labelled_eval_set_reads_the_students_answers(llm_server):
    evals = eval_dataset([(text, "Math") for text, _ in SVAMP], golds=[gold for _, gold in SVAMP])
    experiment = experiment_create(config=_local_config(llm_server, evals))
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    ids = list(evals.instructions.order_by("pk").values_list("pk", flat=True))
    said = {
        ids[0]: "They put 10 seeds in 45 beds. So the answer is ( 10 * 45 ).",  # right: same value
        ids[1]: "The answer is 9.",  # right: 9 == 3 + 6
        ids[2]: "So the answer is ( 20.0 + 8.0 ).",  # wrong
        ids[3]: "",  # a tiny student may say nothing: wrong, not missing
    }

    def answer(item, round_index):
        return said[_instruction_id(item)] if "/evaluate:" in item.key else "A plain answer."

    experiment = run_local(experiment, answer)
    assert experiment.status == E.FINISHED, experiment.status_reason
    evaluation = Evaluation.objects.get(experiment=experiment)
    assert (evaluation.dataset_kind, evaluation.labelled, evaluation.correct) == ("svamp", 4, 2)
    assert evaluation.accuracy == pytest.approx(0.5)
    assert evaluation.accuracy_ci_low <= 0.5 <= evaluation.accuracy_ci_high
    assert evaluation.per_category["Math"]["accuracy"]["rate"] == pytest.approx(0.5)
    assert EvaluationCategory.objects.get(evaluation=evaluation, category="Math").accuracy == pytest.approx(0.5)
    assert evaluation.win_rate is not None  # a judge is configured too: both figures
    answers = Response.objects.filter(round__experiment=experiment, stage="evaluate", role="student")
    assert {a.instruction_id: a.text for a in answers} == said


def test_the_predict_prompt_is_scored_by_the_label_the_student_gives(llm_server):
    evals = eval_dataset([(text, "Math") for text, _ in SVAMP], golds=[gold for _, gold in SVAMP])
    experiment = experiment_create(config=_local_config(llm_server, evals))
    # What step_by_step's evaluate stage gets (apps.experiments.evaluation.evaluation_params).
    StageRun.objects.filter(round__experiment=experiment, kind="evaluate").update(
        params={"prompt": "predict", "dataset_kind": "svamp"}
    )
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    ids = list(evals.instructions.order_by("pk").values_list("pk", flat=True))
    labels = {ids[0]: "( 10.0 * 45.0 )\nbecause ten in each", ids[1]: "( 3.0 * 6.0 )", ids[2]: "12", ids[3]: "3"}
    prompts = {}

    def answer(item, round_index):
        if "/evaluate:" not in item.key:
            return "A plain answer."
        prompts[_instruction_id(item)] = item.prompt
        return labels[_instruction_id(item)]

    experiment = run_local(experiment, answer)
    assert experiment.status == E.FINISHED, experiment.status_reason
    assert all(prompt.startswith("predict: ") for prompt in prompts.values()) and len(prompts) == 4
    evaluation = Evaluation.objects.get(experiment=experiment)
    assert (evaluation.labelled, evaluation.correct) == (4, 3)  # the first line is the label; 20 - 8 = 12
    stored = dict(
        Response.objects.filter(round__experiment=experiment, stage="evaluate", role="student").values_list(
            "instruction_id", "parsed_label"
        )
    )
    assert stored[ids[0]] == "( 10.0 * 45.0 )"


def test_the_api_returns_each_rounds_evaluation_for_the_charts(llm_server, api_for):
    evals = eval_dataset()
    experiment = experiment_create(
        config=lion_config(llm_server, seed_dataset(), params={"rounds": 1}, eval_dataset=evals.name)
    )
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    experiment = drive(experiment)
    evaluation = Evaluation.objects.get(experiment=experiment)
    url = f"/api/v1/experiments/{experiment.pk}/evaluations/"
    body = api_for(Role.VIEWER).get(url).json()
    [row] = body["rounds"]
    assert row["round"] == 1 and row["win_rate"] == pytest.approx(evaluation.win_rate)
    assert row["ci"] == [pytest.approx(evaluation.ci_low), pytest.approx(evaluation.ci_high)]
    assert row["lc_win_rate"] == pytest.approx(evaluation.lc_win_rate)
    assert row["counts"]["judged"] == evaluation.judged
    assert {c["category"] for c in row["categories"]} == set(body["categories"]) == {"Math", "Writing", "Others"}
    assert [point["round"] for point in body["by_category"]["Math"]] == [1]
    from rest_framework.test import APIClient

    assert APIClient().get(url).status_code in (401, 403)
    assert api_for(Role.VIEWER).get("/api/v1/experiments/999999/evaluations/").status_code == 404


# --- a regression between rounds ----------------------------------------------------------------------------
_ANSWERS = re.compile(r"\[Answer of Assistant 1\]\n(.*?)\n\n\[Answer of Assistant 2\]\n(.*?)\n\nCompare", re.S)


def _marked_judge(original):
    """The test server's judge, except that an answer marked GOOD scores 9 and one marked BAD scores 2
    against an unmarked one's 5: the replies a test needs to make a category fall."""

    def answer(model, messages):
        found = _ANSWERS.search(replies._last_user_text(messages))
        if replies.role_of(model) != "judge" or not found or not any(m in found.group(0) for m in ("GOOD", "BAD")):
            return original(model, messages)
        first, second = (9 if "GOOD" in a else 2 if "BAD" in a else 5 for a in found.groups())
        return f"Both were read.\n\nScore of Assistant 1: {first}\nScore of Assistant 2: {second}"

    return answer


def test_a_category_that_falls_in_the_next_round_raises_a_regression_alert(llm_server, monkeypatch):
    monkeypatch.setattr(replies, "answer", _marked_judge(replies.answer))
    items = [(f"Compute {n} plus {n + 7}.", "Math") for n in range(4)]
    items += [(f"Write a line of verse about the number {n}.", "Writing") for n in range(4)]
    evals = eval_dataset(items)
    experiment = experiment_create(config=_local_config(llm_server, evals, rounds=2))
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    maths = set(evals.instructions.filter(task_category="Math").values_list("pk", flat=True))

    def answer(item, round_index):
        if "/evaluate:" not in item.key:
            return "A plain answer."
        # Round 1: every answer wins. Round 2: the Math answers lose, Writing still wins.
        return "BAD answer" if round_index == 2 and _instruction_id(item) in maths else "GOOD answer"

    experiment = run_local(experiment, answer)
    assert experiment.status == E.FINISHED, experiment.status_reason
    first, second = Evaluation.objects.filter(experiment=experiment).order_by("round__index")
    assert (first.win_rate, second.win_rate) == (1.0, 0.5)
    assert first.regressions == []
    [alert] = second.regressions
    assert (alert["category"], alert["metric"], alert["previous"], alert["current"]) == ("Math", "win_rate", 1.0, 0.0)
    assert alert["current_ci"][1] < alert["previous_ci"][0]
    rows = {c.category: c for c in EvaluationCategory.objects.filter(evaluation=second)}
    assert rows["Math"].regressed and not rows["Writing"].regressed
    assert (rows["Math"].win_rate, rows["Writing"].win_rate) == (0.0, 1.0)
    round_two = Round.objects.get(experiment=experiment, index=2)
    assert [a["category"] for a in round_two.metrics["evaluation"]["regressions"]] == ["Math"]

    # run_experiment prints each finished round's evaluation once, with its alerts.
    out = StringIO()
    command, reported = Command(stdout=out), set()
    printer = ProgressPrinter(OutputWrapper(StringIO()), tty=False)
    for _ in range(2):
        command._report_evaluations(experiment, printer, reported)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Round 1 evaluation on 8 items: win rate 100.0% [100.0%, 100.0%]")
    assert lines[1].startswith("Round 2 evaluation on 8 items: win rate 50.0%")
    assert lines[1].endswith("REGRESSION Math win rate 100.0% → 0.0%")
