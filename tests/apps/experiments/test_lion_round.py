"""Lion end to end through the real gateway runner against the local test server (real sockets): teacher,
served student, judge and generator; training reported done as a gpu worker would."""

import pytest

from apps.datasets.models import Dataset, Instruction
from apps.experiments.models import Experiment, Lineage, PoolMember, Round, Snapshot, StageRun
from apps.experiments.selectors import pool_instruction_ids
from apps.experiments.services import experiment_create, experiment_start
from apps.judging.models import Judgment, Response
from apps.llm.models import LLMCall, LLMCallUse
from apps.training.models import TrainingJob
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset
from workers.algorithms.rouge import rouge_l
from workers.llm.prompts import task_text

pytestmark = pytest.mark.django_db
E = Experiment.Status


def _run(server, dataset, **overrides) -> Experiment:
    experiment = experiment_create(config=lion_config(server, dataset, **overrides))
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    return drive(experiment)


def test_a_lion_experiment_runs_two_rounds_and_keeps_its_invariants(llm_server):
    dataset = seed_dataset()
    experiment = _run(llm_server, dataset)
    assert experiment.status == E.FINISHED, experiment.status_reason
    rounds = list(Round.objects.filter(experiment=experiment).order_by("index"))
    assert [r.status for r in rounds] == ["finished", "finished"]
    for round_ in rounds:
        names = list(StageRun.objects.filter(round=round_).order_by("position").values_list("name", "status"))
        assert names == [
            (n, "done")
            for n in (
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
            )
        ]
    first, second = rounds
    seeds = set(Instruction.objects.filter(dataset=dataset).values_list("pk", flat=True))
    # Round 1: train pool = cache pool = the seed pool.
    assert set(pool_instruction_ids(experiment_id=experiment.pk, pool="train", round_index=1)) == seeds
    assert set(pool_instruction_ids(experiment_id=experiment.pk, pool="cache", round_index=1)) == seeds

    for round_ in rounds:
        cache = set(pool_instruction_ids(experiment_id=experiment.pk, pool="cache", round_index=round_.index))
        judgments = list(Judgment.objects.filter(round=round_))
        # Every judged item of the cache pool has both orders, or is invalid.
        assert {j.instruction_id for j in judgments} == cache
        for j in judgments:
            assert j.call_teacher_first_id and j.call_student_first_id
            both = None not in (j.teacher_first_teacher_score, j.student_first_teacher_score)
            assert both or j.verdict == "invalid"
            if j.verdict != "invalid":
                # hard iff gap >= tau (Lion's rule, tau = 1.0), the gap from both orders.
                t = (j.teacher_first_teacher_score + j.student_first_teacher_score) / 2
                s = (j.teacher_first_student_score + j.student_first_student_score) / 2
                assert j.gap == pytest.approx(t - s)
                assert j.verdict == ("hard" if j.gap >= 1.0 else "easy")
        assert {j.verdict for j in judgments} <= {"hard", "easy", "invalid"}
        assert Response.objects.filter(round=round_, role="student", instruction_id__in=cache).count() == len(cache)

    # Generated items: novel against the cache pool and each other, with lineage.
    generated = list(Instruction.objects.filter(dataset__owner_experiment=experiment).order_by("pk"))
    assert generated, "round 1 generated nothing"
    owned = Dataset.objects.get(owner_experiment=experiment)
    assert owned.size == len(generated) and owned.name == f"{experiment.name} · generated"
    for round_ in rounds:
        made = [g for g in generated if g.created_in_round_id == round_.pk]
        cache_texts = [
            task_text(i.text, i.input)
            for i in Instruction.objects.filter(
                pk__in=pool_instruction_ids(experiment_id=experiment.pk, pool="cache", round_index=round_.index)
            )
        ]
        earlier = [g.text for g in generated if g.created_in_round_id != round_.pk and g.pk < (made or [g])[0].pk]
        for k, item in enumerate(made):
            others = cache_texts + earlier + [m.text for m in made[:k]]
            assert max((rouge_l(item.text, o) for o in others), default=0) <= 0.7
            lineage = Lineage.objects.get(instruction=item)
            assert lineage.round_id == round_.pk and lineage.origin in ("hard", "easy")
            assert lineage.seed_id in {j.instruction_id for j in Judgment.objects.filter(round=round_)}
            assert item.parent_id == lineage.seed_id and item.origin == "generated"
            if lineage.nearest_id is not None:
                nearest = Instruction.objects.get(pk=lineage.nearest_id)
                assert lineage.nearest_score == pytest.approx(
                    rouge_l(item.text, task_text(nearest.text, nearest.input))
                )
                assert 0.5 < lineage.nearest_score <= 0.7
    # The next train pool is the accepted generated items; the cache pool grows by them.
    made_1 = {g.pk for g in generated if g.created_in_round_id == first.pk}
    assert set(pool_instruction_ids(experiment_id=experiment.pk, pool="train", round_index=2)) == made_1
    assert set(pool_instruction_ids(experiment_id=experiment.pk, pool="cache", round_index=2)) == seeds | made_1
    assert second.metrics["pools"]["cache"] == len(seeds | made_1) + sum(
        1 for g in generated if g.created_in_round_id == second.pk
    )
    # One training job per round, on its snapshot: the teacher's answers to the round's train pool.
    for round_ in rounds:
        snapshot = Snapshot.objects.get(round=round_)
        [job] = TrainingJob.objects.filter(round=round_)
        assert job.snapshot_id == snapshot.pk and job.status == "succeeded"
        train = pool_instruction_ids(experiment_id=experiment.pk, pool="train", round_index=round_.index)
        assert snapshot.size == len(train) == snapshot.items.count()
        assert {item.instruction_id for item in snapshot.items.all()} == set(train)
    # Each stage's uses are its own; every call in the ledger was made once.
    assert LLMCallUse.objects.filter(experiment=experiment, round=first, stage="teacher_cache").count() == len(seeds)
    assert llm_server.stats().requests == LLMCall.objects.exclude(status="pending").count()


def test_the_same_config_over_the_same_ledger_pays_nothing_and_gives_the_same_snapshots(llm_server):
    dataset = seed_dataset()
    first = _run(llm_server, dataset, name="lion-first")
    calls, requests = LLMCall.objects.count(), llm_server.stats().requests
    hashes = list(
        Snapshot.objects.filter(round__experiment=first).order_by("round__index").values_list("hash", flat=True)
    )
    again = _run(llm_server, dataset, name="lion-again")
    assert again.status == E.FINISHED, again.status_reason
    assert LLMCall.objects.count() == calls and llm_server.stats().requests == requests
    assert not LLMCallUse.objects.filter(experiment=again, paid=True).exists()
    assert LLMCallUse.objects.filter(experiment=again).count() == LLMCallUse.objects.filter(experiment=first).count()
    redo = list(
        Snapshot.objects.filter(round__experiment=again).order_by("round__index").values_list("hash", flat=True)
    )
    assert redo == hashes and len(hashes) == 2
    # What the second experiment generated is its own, never the first's (nor the seed dataset's).
    assert (
        Instruction.objects.filter(dataset__owner_experiment=again).count()
        == Instruction.objects.filter(dataset__owner_experiment=first).count()
    )
    assert Dataset.objects.get(pk=dataset.pk).size == Instruction.objects.filter(dataset=dataset).count()
    assert not PoolMember.objects.filter(experiment=again, instruction__dataset__owner_experiment=first).exists()
