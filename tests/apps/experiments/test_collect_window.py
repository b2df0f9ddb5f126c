"""A collect batch reads its items' uses in the key range its batch was queued in, not all of the stage's,
and still finds every item's first call when a batch was queued again or its range is unknown."""

import re

import pytest
from django.db import connection
from django.db.models import Min
from django.test.utils import CaptureQueriesContext

from apps.experiments import engine
from apps.experiments.models import StageRun
from apps.experiments.services import experiment_create, experiment_start
from apps.experiments.stages import base
from apps.judging.models import Response
from apps.llm.models import LLMCallUse
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset

pytestmark = pytest.mark.django_db
STAGE = "teacher_train"


def _start(server):
    experiment = experiment_create(config=lion_config(server, seed_dataset(), params={"rounds": 1}))
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    return experiment


def _run(experiment) -> StageRun | None:
    return StageRun.objects.filter(round__experiment=experiment, name=STAGE).first()


def _first_calls(experiment) -> dict[int, int]:
    """{instruction: the first call made for it}, from all of the stage's uses."""
    rows = (
        LLMCallUse.objects.filter(experiment=experiment, stage=STAGE)
        .values("item")
        .annotate(first=Min("call_id"))
        .values_list("item", "first")
    )
    return {int(item.split(":")[1]): call_id for item, call_id in rows}


def _answers(experiment) -> dict[int, int]:
    rows = Response.objects.filter(round__experiment=experiment, stage=STAGE, role="teacher")
    return dict(rows.values_list("instruction_id", "llm_call_id"))


def test_a_collect_batch_reads_the_uses_of_its_own_batch(llm_server):
    experiment = _start(llm_server)
    drive(experiment, until=lambda e: (run := _run(e)) is not None and run.phase == StageRun.Phase.COLLECT)
    run = _run(experiment)
    spans = run.state[base.SPANS]
    assert len(spans) == 3  # twelve instructions in batches of five
    lo, hi = spans[0][2], spans[0][3]
    table = LLMCallUse._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        engine.advance(experiment.pk)
    reads = [q["sql"] for q in queries.captured_queries if f'FROM "{table}"' in q["sql"]]
    assert reads
    for sql in reads:
        assert re.search(rf'"{table}"\."id" > {lo} AND "{table}"\."id" <= {hi}', sql), sql
    experiment = drive(experiment)
    assert experiment.status == "finished"
    assert _answers(experiment) == _first_calls(experiment) and len(_answers(experiment)) == 12
    assert base.SPANS not in _run(experiment).state


def test_a_batch_queued_again_finds_its_first_calls_outside_its_range(llm_server):
    experiment = _start(llm_server)
    drive(experiment, until=lambda e: (run := _run(e)) is not None and run.phase == "submit" and run.cursor > 0)
    # A worker died after the first batch was queued, and the batch is queued again from the start: its
    # uses are already there, so the range noted this time holds none of them.
    StageRun.objects.filter(pk=_run(experiment).pk).update(cursor=0)
    drive(experiment, until=lambda e: _run(e).phase == StageRun.Phase.COLLECT)
    lo, hi = _run(experiment).state[base.SPANS][0][2:]
    assert not LLMCallUse.objects.filter(experiment=experiment, stage=STAGE, pk__gt=lo, pk__lte=hi).exists()
    experiment = drive(experiment)
    assert experiment.status == "finished"
    assert _answers(experiment) == _first_calls(experiment) and len(_answers(experiment)) == 12
