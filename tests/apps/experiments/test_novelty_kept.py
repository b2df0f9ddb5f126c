"""The experiment's novelty index lives in the worker process across batches and rounds: the pool is read
and tokenised once per experiment, kept instructions join as they are stored, and a process that lost the
index (a restart) rebuilds it from the database and decides exactly as the kept one did."""

import pytest

from apps.datasets.models import Instruction
from apps.experiments import novelty
from apps.experiments.models import Experiment, Lineage, StageRun
from apps.experiments.novelty import experiment_novelty, novelty_pool
from apps.experiments.services import experiment_create, experiment_start
from apps.experiments.stages.generate import owned_dataset
from apps.experiments.stages.review_gate import auto_reviewer
from apps.reviews.models import ReviewTask, ReviewVerdict
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset
from workers.algorithms.novelty import NoveltyConfig

pytestmark = pytest.mark.django_db


@pytest.fixture
def reads(monkeypatch):
    """How many pool rows the kept indexes read from the database (each one tokenised), call by call."""
    calls: list[int] = []
    real = novelty._texts

    def counting(rows):
        ids, texts = real(rows)
        calls.append(len(ids))
        return ids, texts

    monkeypatch.setattr(novelty, "_texts", counting)
    return calls


def _generated(experiment) -> list[tuple]:
    """Each generated instruction with its round, origin, nearest item (by text) and score."""
    rows = Lineage.objects.filter(experiment=experiment).select_related("instruction", "nearest", "round")
    return sorted(
        (
            lineage.round.index,
            lineage.instruction.text,
            lineage.origin,
            lineage.nearest.text if lineage.nearest else None,
            lineage.nearest_score,
        )
        for lineage in rows
    )


def _run(server, dataset, name, **params) -> Experiment:
    config = lion_config(server, dataset, name=name, params={"new_per_round": 24, "batch_size": 4, **params})
    experiment = experiment_create(config=config)
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    return experiment


def test_the_pool_is_read_once_per_experiment_and_a_lost_index_decides_the_same(llm_server, reads, monkeypatch):
    dataset = seed_dataset()
    kept = drive(_run(llm_server, dataset, "kept-index"))
    assert kept.status == "finished", kept.status_reason
    generate_runs = StageRun.objects.filter(round__experiment=kept, name="generate")
    assert generate_runs.count() == 2 and all(run.total == 24 for run in generate_runs)
    # One read of the pool (round 1's first batch: the 12 seeds); every later batch of both rounds used
    # the kept index, which the stored instructions joined.
    assert reads == [12]
    index = novelty._KEPT[kept.pk]
    pool = list(novelty_pool(experiment_id=kept.pk, round_index=2).order_by("pk").values_list("pk", flat=True))
    assert index.ids == pool and len(index.index) == len(pool) > 12

    # The same config where every step finds no index (as after a restart each time): rebuilt from the
    # database at each generate batch, it decides the same and names the same nearest items.
    reads.clear()
    real_advance = novelty.experiment_novelty

    def forgetful(**kwargs):
        novelty._KEPT.clear()
        return real_advance(**kwargs)

    monkeypatch.setattr("apps.experiments.stages.generate.experiment_novelty", forgetful)
    lost = drive(_run(llm_server, dataset, "lost-index"))
    assert lost.status == "finished", lost.status_reason
    assert len(reads) == 2 * 6  # 24 candidates in batches of 4, in each of the two rounds
    assert _generated(lost) == _generated(kept)
    assert any(row[3] is not None for row in _generated(kept))  # some nearest items to compare


def test_items_that_joined_elsewhere_are_added_and_an_edit_rebuilds(llm_server, reads):
    experiment = drive(_run(llm_server, seed_dataset(), "kept-check", rounds=1))
    assert experiment.status == "finished", experiment.status_reason
    config = NoveltyConfig()
    first = experiment_novelty(experiment=experiment, round_index=1, config=config, run_id=0, cursor=0)
    size = len(first.ids)
    reads.clear()

    # An instruction stored by another process: the check finds it and only it is read.
    made = Instruction.objects.create(
        dataset=owned_dataset(experiment), text="Plan a picnic for ten people.", content_hash="x" * 64
    )
    again = experiment_novelty(experiment=experiment, round_index=1, config=config, run_id=0, cursor=0)
    assert again is first and reads == [1] and first.ids[-1] == made.pk and len(first.index) == size + 1

    # A reviewer's edit changes a pool text in place: the next batch rebuilds from the database.
    task = ReviewTask.objects.filter(round__experiment=experiment, kind=ReviewTask.Kind.GENERATED).first()
    ReviewVerdict.objects.create(
        task=task, reviewer=auto_reviewer(), decision=ReviewVerdict.Decision.EDIT, edited_text="Plan a party."
    )
    rebuilt = experiment_novelty(experiment=experiment, round_index=1, config=config, run_id=0, cursor=0)
    assert rebuilt is not first and rebuilt.ids == first.ids and reads == [1, size + 1]
