"""Stage kinds: idempotent batches, the hard rule, review gates whose decisions change what trains, and
approve-and-train once however often it is pressed."""

import pytest
from django.contrib.contenttypes.models import ContentType

from apps.core.roles import Role
from apps.datasets.models import Instruction
from apps.experiments.models import Experiment, Lineage, PoolMember, Round, StageRun
from apps.experiments.selectors import pool_instruction_ids
from apps.experiments.services import experiment_approve_and_train, experiment_create, experiment_start
from apps.experiments.stages import Context, kind_for
from apps.experiments.stages.generate import effective_verdicts
from apps.judging.models import Judgment, Response
from apps.llm.models import LLMCall, LLMCallUse
from apps.reviews.models import ReviewTask
from apps.reviews.services import review_decide
from apps.training.models import TrainingJob
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset
from tests.factories import InstructionFactory, UserFactory

pytestmark = pytest.mark.django_db
E = Experiment.Status
COUNTED = (LLMCall, LLMCallUse, Response, Judgment, Instruction, Lineage, PoolMember, ReviewTask)


def _counts():
    return {model.__name__: model.objects.count() for model in COUNTED}


def test_re_running_any_batch_makes_no_new_rows_and_no_new_calls(llm_server):
    experiment = experiment_create(config=lion_config(llm_server, seed_dataset()))
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    experiment = drive(experiment)
    assert experiment.status == E.FINISHED
    before, requests = _counts(), llm_server.stats().requests
    for run in StageRun.objects.filter(round__experiment=experiment).order_by("round__index", "position"):
        kind = kind_for(run.kind)
        ctx = Context(experiment, run.round, run)
        ids = kind.units(ctx, 0, 5)
        kind.process(ctx, ids)  # as if the step had crashed after its writes and ran again
        kind.collect(ctx, ids)
        kind.finalize(ctx)
    assert _counts() == before
    assert llm_server.stats().requests == requests


def test_a_stage_resumed_from_an_earlier_cursor_repeats_nothing(llm_server):
    experiment = experiment_create(config=lion_config(llm_server, seed_dataset(), params={"rounds": 1}))
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    run = StageRun.objects.get(round__experiment=experiment, name="judge")
    drive(experiment, until=lambda e: StageRun.objects.get(pk=run.pk).phase == "collect")
    judge_calls = LLMCall.objects.filter(purpose="judge").count()
    drive(experiment, until=lambda e: Judgment.objects.exists() and StageRun.objects.get(pk=run.pk).cursor > 0)
    # A worker died after the first collect batch committed but the cursor is replayed from 0.
    StageRun.objects.filter(pk=run.pk).update(cursor=0)
    experiment = drive(experiment)
    assert experiment.status == E.FINISHED
    assert LLMCall.objects.filter(purpose="judge").count() == judge_calls
    cache = pool_instruction_ids(experiment_id=experiment.pk, pool="cache", round_index=1)
    assert Judgment.objects.filter(round__experiment=experiment).count() == len(cache)


def _judgment(round_, instruction, scores):
    teacher = Response.objects.create(instruction=instruction, role="teacher", round=round_, model="t", text="t")
    student = Response.objects.create(instruction=instruction, role="student", round=round_, model="s", text="s")
    t1, s1, s2, t2 = scores
    return Judgment.objects.create(
        instruction=instruction,
        round=round_,
        teacher_response=teacher,
        student_response=student,
        judge_model="j",
        teacher_first_teacher_score=t1,
        teacher_first_student_score=s1,
        student_first_student_score=s2,
        student_first_teacher_score=t2,
    )


@pytest.mark.parametrize(("rule", "at_tau"), [("gap >= tau", "hard"), ("gap > tau", "easy")])
def test_a_gap_of_exactly_tau_follows_the_hard_rule(rule, at_tau):
    experiment = Experiment.objects.create(
        name=f"rule-{at_tau}", recipe="lion", config={"params": {"tau": 1.0, "hard_rule": rule}}
    )
    round_ = Round.objects.create(experiment=experiment, index=1, status="running")
    run = StageRun.objects.create(round=round_, position=0, name="discriminate", kind="discriminate")
    exact = _judgment(round_, InstructionFactory(), (8, 7, 7, 8))  # gap 1.0 exactly
    above = _judgment(round_, InstructionFactory(), (9, 7, 7, 9))  # gap 2.0
    below = _judgment(round_, InstructionFactory(), (8, 8, 7, 8))  # gap 0.5
    broken = _judgment(round_, InstructionFactory(), (8, 7, None, None))  # one order unparsed
    kind, ctx = kind_for("discriminate"), Context(experiment, round_, run)
    kind.start(ctx)
    kind.process(ctx, kind.units(ctx, 0, 10))
    verdicts = {j.pk: j.verdict for j in Judgment.objects.all()}
    assert verdicts == {exact.pk: at_tau, above.pk: "hard", below.pk: "easy", broken.pk: "invalid"}


def _decide(round_, kind, decide):
    reviewer = UserFactory(role=Role.REVIEWER)
    for task in ReviewTask.objects.filter(round=round_, kind=kind).exclude(status="done"):
        decision, text = decide(task)
        assert review_decide(reviewer=reviewer, task_id=task.pk, decision=decision, edited_text=text).status == "done"


def test_gates_hold_the_round_and_reviewers_decisions_change_what_trains(llm_server):
    config = lion_config(llm_server, seed_dataset(), review={"hard_verdicts": "all", "generated": "all"})
    experiment = experiment_create(config=config)
    experiment_start(experiment_id=experiment.pk)
    experiment = drive(experiment, train=False)
    assert experiment.status == E.WAITING_APPROVAL  # round 1's train stage waits for the operator
    operator = UserFactory(role=Role.OPERATOR)
    jobs = {experiment_approve_and_train(experiment_id=experiment.pk, by=operator).pk for _ in range(3)}
    assert len(jobs) == 1 and TrainingJob.objects.count() == 1
    round_ = Round.objects.get(experiment=experiment, index=1)
    assert round_.approved_by == operator and round_.training_set_hash

    experiment = drive(experiment)
    assert experiment.status == E.WAITING_REVIEW
    judgments = list(Judgment.objects.filter(round=round_, verdict__in=["hard", "easy"]).order_by("pk"))
    assert ReviewTask.objects.filter(round=round_, kind="verdict").count() == len(judgments)
    flipped, rejected = judgments[0], judgments[1]

    def verdicts(task):
        if task.subject_id == flipped.pk:
            return "flip", ""
        return ("invalid", "") if task.subject_id == rejected.pk else ("accept", "")

    _decide(round_, "verdict", verdicts)
    ctx = Context(experiment, round_, StageRun.objects.get(round=round_, name="generate"))
    effective = effective_verdicts(ctx)
    assert rejected.instruction_id not in effective
    assert effective[flipped.instruction_id] == {"hard": "easy", "easy": "hard"}[flipped.verdict]

    experiment = drive(experiment)
    assert experiment.status == E.WAITING_REVIEW
    assert StageRun.objects.get(round=round_, name="gate_generated").status == "waiting"
    plan = StageRun.objects.get(round=round_, name="generate").state["plan"]
    assert rejected.instruction_id not in {seed for seed, _, _ in plan}
    made = list(
        Lineage.objects.filter(round=round_).order_by("instruction_id").values_list("instruction_id", flat=True)
    )
    assert len(made) >= 2
    cut, edited = made[0], made[1]
    content_type = ContentType.objects.get_for_model(Instruction)
    assert ReviewTask.objects.filter(round=round_, kind="generated", subject_type=content_type).count() == len(made)

    def generated(task):
        if task.subject_id == cut:
            return "reject", ""
        return (
            ("edit", "Explain photosynthesis to a gardener in five steps.")
            if task.subject_id == edited
            else ("accept", "")
        )

    _decide(round_, "generated", generated)
    experiment = drive(experiment, train=False)
    assert experiment.status == E.WAITING_APPROVAL  # round 2's train stage
    train_2 = set(pool_instruction_ids(experiment_id=experiment.pk, pool="train", round_index=2))
    assert train_2 == set(made) - {cut}
    assert Instruction.objects.get(pk=edited).text == "Explain photosynthesis to a gardener in five steps."
    experiment_approve_and_train(experiment_id=experiment.pk, by=operator)
    snapshot_prompts = set(
        Round.objects.get(experiment=experiment, index=2).snapshot.items.values_list("prompt", flat=True)
    )
    assert "Explain photosynthesis to a gardener in five steps." in snapshot_prompts


def test_approve_and_train_refuses_when_nothing_waits_for_approval(llm_server):
    experiment = experiment_create(config=lion_config(llm_server, seed_dataset()))
    from apps.experiments.engine import IllegalTransition

    with pytest.raises(IllegalTransition, match="not waiting for approval"):
        experiment_approve_and_train(experiment_id=experiment.pk)
    assert not TrainingJob.objects.exists()


@pytest.mark.skipif(__import__("django.db").db.connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_approve_and_train_pressed_by_many_at_once_queues_one_job(llm_server):
    from tests.apps.experiments.test_engine import _race

    experiment = experiment_create(config=lion_config(llm_server, seed_dataset()))
    experiment_start(experiment_id=experiment.pk)
    experiment = drive(experiment, train=False)
    assert experiment.status == E.WAITING_APPROVAL
    operator = UserFactory(role=Role.OPERATOR)
    results = _race(6, lambda: experiment_approve_and_train(experiment_id=experiment.pk, by=operator).pk)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(set(results)) == 1 and TrainingJob.objects.count() == 1
    experiment.refresh_from_db()
    assert experiment.status == E.TRAINING
