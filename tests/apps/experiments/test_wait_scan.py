"""The wait phase's cursor over a stage's uses: a wake-up reads what settled since the last one, the
progress and cost it reports follow the calls as they settle in any order, the batches the cursor has
passed are collected while later calls are out, and the stage leaves the wait only when none of its calls
is pending, even one sent again behind the cursor."""

import re
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.experiments import engine
from apps.experiments.models import StageRun
from apps.experiments.services import experiment_create, experiment_start
from apps.experiments.stages import base
from apps.judging.models import Response
from apps.llm.models import LLMCall, LLMCallUse
from apps.llm.recording import Outcome, write_outcomes
from apps.llm.services import llm_calls_retry_failed
from tests.apps.experiments.conftest import lion_config, seed_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _small_reads(monkeypatch):
    # Reads of 2 then 8 uses, so the twelve calls of a stage take the cursor through several of them.
    monkeypatch.setattr(base, "SCAN_FIRST", 2)
    monkeypatch.setattr(base, "SCAN_MOST", 8)


def _waiting_stage(server, name="teacher_train"):
    """An experiment advanced (nothing sent) until `name` waits for its calls; its calls in queue order."""
    experiment = experiment_create(config=lion_config(server, seed_dataset(), params={"rounds": 1}))
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    for _ in range(200):
        run = StageRun.objects.filter(round__experiment=experiment, name=name).first()
        if run is not None and run.phase == StageRun.Phase.WAIT:
            break
        assert engine.advance(experiment.pk), "the engine stopped before the stage waited"
    else:
        raise AssertionError(f"{name} never waited")
    uses = LLMCallUse.objects.filter(experiment=experiment, stage=name).order_by("pk")
    calls = [use.call for use in uses]
    assert calls and all(call.status == LLMCall.Status.PENDING for call in calls)
    return experiment, run, calls


def _settle(calls, status=LLMCall.Status.OK, cost="0.01"):
    """What the gateway's recorder writes for results: the outcome and the paying use, in one commit."""
    with transaction.atomic():
        write_outcomes(
            [Outcome(call_id=c.pk, status=status, reply=f"Answer {c.pk}.", cost=Decimal(cost)) for c in calls]
        )
        LLMCallUse.objects.filter(call__in=calls).update(paid=True)


def _wake(experiment, run) -> StageRun:
    engine.advance(experiment.pk)
    return StageRun.objects.get(pk=run.pk)


def _exact_cost(run) -> Decimal:
    uses = LLMCallUse.objects.filter(round=run.round, stage=run.name, paid=True)
    return sum((use.call.cost for use in uses), Decimal(0))


def test_progress_and_cost_follow_calls_settling_out_of_order(llm_server):
    experiment, run, calls = _waiting_stage(llm_server)
    assert len(calls) == run.total == 12
    run = _wake(experiment, run)
    assert (run.phase, run.done, run.cost) == ("wait", 0, 0)

    _settle(calls[2:6])  # the first two are still in flight
    run = _wake(experiment, run)
    assert (run.phase, run.done, run.cost) == ("wait", 0, 0)  # nothing counted ahead of a pending call

    _settle(calls[:2])
    run = _wake(experiment, run)
    assert (run.phase, run.done, run.cost) == ("wait", 6, Decimal("0.06"))
    # The first batch (five instructions) has all its answers: collected while the others are out.
    first_batch = sorted(Response.objects.filter(round=run.round, role="teacher").values_list("llm_call", flat=True))
    assert first_batch == [c.pk for c in calls[:5]]
    assert run.state[base.EARLY][1] == 5

    _settle(calls[6:11], cost="0.02")
    run = _wake(experiment, run)
    assert (run.phase, run.done, run.cost) == ("wait", 11, Decimal("0.16"))
    assert run.cost == _exact_cost(run)

    _settle(calls[11:])
    run = _wake(experiment, run)
    assert run.phase == "collect"
    assert run.cost == _exact_cost(run) == Decimal("0.17")
    assert base.WAIT_TALLY not in run.state
    for _ in range(20):  # the stage goes on to store every answer
        run = _wake(experiment, run)
        if run.status == StageRun.Status.DONE:
            break
    assert run.status == StageRun.Status.DONE
    assert Response.objects.filter(round=run.round, role="teacher").count() == 12


def test_a_wake_up_reads_only_the_uses_after_its_cursor(llm_server):
    experiment, run, calls = _waiting_stage(llm_server)
    run = _wake(experiment, run)  # enters the wait: the one look at all the stage's uses
    _settle(calls[:5])
    before = run.cursor
    table = LLMCallUse._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        run = _wake(experiment, run)
    reads = [q["sql"] for q in queries.captured_queries if f'FROM "{table}"' in q["sql"]]
    assert reads, "the wake-up read no uses"
    for sql in reads:
        bound = re.search(rf'"{table}"\."id" > (\d+)', sql)
        assert bound is not None, f"a wake-up read the stage's uses without the cursor: {sql}"
    assert int(re.search(rf'"{table}"\."id" > (\d+)', reads[0]).group(1)) == before
    assert run.cursor > before and run.done == 5


def test_a_call_sent_again_behind_the_cursor_keeps_the_stage_waiting(llm_server):
    experiment, run, calls = _waiting_stage(llm_server)
    _settle(calls[:3])
    _settle(calls[3:4], status=LLMCall.Status.FAILED, cost="0")
    _settle(calls[4:11])
    run = _wake(experiment, run)
    assert run.phase == "wait" and run.done == 11
    # An operator sends the failed call again: it is pending behind the cursor.
    assert llm_calls_retry_failed(experiment_id=experiment.pk) == 1
    _settle(calls[11:])
    run = _wake(experiment, run)  # the cursor reached the end; the look at all uses finds the retried call
    assert run.phase == "wait"
    assert 0 < run.done < run.total
    _settle(calls[3:4])
    run = _wake(experiment, run)
    assert run.phase == "collect"
    assert run.cost == _exact_cost(run) == Decimal("0.12")


def test_a_fresh_sample_of_an_unparsable_reply_is_waited_for_as_the_same_item(llm_server):
    experiment, run, calls = _waiting_stage(llm_server)
    run = _wake(experiment, run)
    # The recorder's way: the unparsable reply and its fresh sample (with the same item's use) in one commit.
    with transaction.atomic():
        _settle(calls[:1], status=LLMCall.Status.INVALID)
        old = calls[0]
        fresh = LLMCall.objects.create(
            request_hash="f" * 64,
            endpoint=old.endpoint,
            model=old.model,
            purpose=old.purpose,
            request=old.request,
            sample_index=1,
            resample_of=old,
        )
        use = LLMCallUse.objects.get(call=old)
        LLMCallUse.objects.create(call=fresh, experiment=experiment, round=use.round, stage=use.stage, item=use.item)
    _settle(calls[1:])
    run = _wake(experiment, run)
    assert run.phase == "wait"
    assert run.done == 11  # the item whose reply is being sampled again is not done
    # The first batch read the pending fresh sample as its first item's outcome: undone, left for later.
    assert not Response.objects.filter(round=run.round, role="teacher").exists()
    assert base.EARLY not in run.state and run.failed == 0
    _settle([fresh])
    run = _wake(experiment, run)
    assert run.phase == "collect"
    assert run.cost == _exact_cost(run) == Decimal("0.13")
    for _ in range(20):
        run = _wake(experiment, run)
        if run.status == StageRun.Status.DONE:
            break
    answers = dict(Response.objects.filter(round=run.round, role="teacher").values_list("instruction", "llm_call"))
    assert len(answers) == 12 and answers[int(use.item.split(":")[1])] == fresh.pk
