"""SIGKILL in the middle of each stage kind: a round of the recipe that uses the kind runs on real Celery worker
processes against the local LLM test server over HTTP (with latency); the workers are killed while the stage
is half done, new ones start, and the round must end exactly as an undisturbed run of the same config does
(every row the round wrote, compared by content: verdicts, answers, generated texts and lineage, seeds,
labels, review samples, pools, evaluations, snapshot hashes), with no finished call paid twice.

The test server answers as a pure function of the request, and each run has its own server (its address is
part of every request hash), so each run starts from an empty ledger and the undisturbed run of its recipe
is the reference. Only calls in flight at the kill may reach the server twice: at most the runner's window
(window factor x max concurrency), never one the ledger had finished, and never as a second ledger row.

To stop inside stages that take milliseconds (discriminate, pools, a gate's step), the test runs the workers
in short slices (SIGCONT, a few milliseconds, SIGSTOP) and looks at the database while they stand still, so
what it sees is exactly what the kill leaves behind. The workers that replace the killed ones serve the next
case, so each case starts workers once.
"""

import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection

from apps.datasets.models import Dataset
from apps.experiments.models import (
    Experiment,
    StageRun,
)
from apps.experiments.services import experiment_create, experiment_start
from apps.llm.models import LLMCall
from apps.training.models import TrainingJob
from tests.apps.experiments.conftest import lion_config, seed_dataset
from tests.apps.experiments.rows import experiment_rows
from tests.apps.experiments.test_evaluate_stage import eval_dataset
from tests.apps.experiments.test_mos_round import mos_config
from tests.apps.experiments.test_step_by_step_round import PROBLEMS
from tests.apps.experiments.test_step_by_step_round import config as step_by_step_config
from tests.apps.experiments.test_tapir_round import tapir_config, tapir_dataset
from tests.factories import DatasetFactory, InstructionFactory
from tests.integration.worker import WorkerProcess, wait_for
from tests.llm_server.server import Faults, ServerThread

# The live workers outlast each test's flush; a serialized rollback restores the migrated rows (content
# types) with their ids, so what the workers cached of them stays true. A module fixture empties the
# database before the first case (see _migrated_rows_from_the_snapshot) and restores it after the last.
pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.slow,
    pytest.mark.smoke,
]
ON_POSTGRES = bool(os.environ.get("DATABASE_URL"))
# CI's PostgreSQL phase kills inside one kind per recipe (a training job, an LLM stage waiting on its calls,
# the step-by-step rationales, the MoS evaluation); its embedded phase (`-m smoke`) kills inside every kind.
POSTGRES_KINDS = ("train", "classify", "rationale", "skill_eval")

LATENCY_S = 0.1
CONCURRENCY = 4
WINDOW = 4 * CONCURRENCY  # RETORT_LLM_WINDOW_FACTOR (4) x max concurrency: calls a runner holds submitted
TRAINING = {"model": "builtin:tiny", "max_steps": 5}


# --- one round of each recipe, small --------------------------------------------------------------------------
def _concurrency(config: dict) -> dict:
    for endpoint in config["endpoints"].values():
        if isinstance(endpoint, dict):
            endpoint["max_concurrency"] = CONCURRENCY
    return config


def _lion(server, name: str) -> dict:
    return lion_config(
        server,
        seed_dataset(name=f"{name}-seeds"),
        name=name,
        params={"rounds": 1, "new_per_round": 12, "batch_size": 2, "eval": {"max_items": 6}},
        review={"hard_verdicts": "sample:0.25", "generated": "sample:0.5"},
        student=TRAINING,
        eval_dataset=eval_dataset().name,
    )


def _tapir(server, name: str) -> dict:
    config = tapir_config(server, tapir_dataset(), name=name, student=TRAINING)
    config["params"].update(rounds=1, batch_size=3)
    return config


def _step_by_step(server, name: str) -> dict:
    dataset = DatasetFactory(name=f"{name}-problems", size=len(PROBLEMS))
    for text, gold in PROBLEMS:
        InstructionFactory(dataset=dataset, text=text, gold_label=gold)
    config = step_by_step_config(server, dataset, name=name, batch_size=2)
    config["student"] = TRAINING
    return config


def _skill(name: str) -> Dataset:
    """A skill dataset under a fixed name: the name is in the snapshot's item kinds (skill:<dataset>), so the
    undisturbed and the killed run train on the same two datasets."""
    dataset, created = Dataset.objects.get_or_create(name=name, defaults={"size": 12})
    if created:
        for k in range(12):
            text = f"{name} question number {k}: what is {k} plus {k}?"
            InstructionFactory(dataset=dataset, text=text, reference_output=f"{name} answer {k}: {2 * k}.")
    return dataset


def _mos(server, name: str) -> dict:
    endpoint = {"base_url": server.url, "model": "teacher-big", "name": f"{name}-teacher"}
    config = mos_config([_skill("skill-a"), _skill("skill-b")], endpoints={"teacher": endpoint}, teacher_answers=True)
    config.update(name=name)
    config["params"]["batch_size"] = 3
    config["student"] = {**config["student"], "max_steps": 5}
    return config


RECIPES = {"lion": _lion, "tapir": _tapir, "step_by_step": _step_by_step, "mos": _mos}


# --- when to kill: the stage run is half done ---------------------------------------------------------------
def _runs(experiment_id: int) -> list[StageRun]:
    return list(StageRun.objects.filter(round__experiment_id=experiment_id).order_by("position"))


def _waiting_on_calls(run: StageRun, _) -> bool:
    """An LLM stage with some items settled and calls still in flight."""
    return run.status == "running" and run.phase == "wait" and 0 < run.done < run.total


def _half_done(run: StageRun, _) -> bool:
    return run.status == "running" and 0 < run.done < run.total


def _collecting(run: StageRun, _) -> bool:
    """A generating stage with some batches through the novelty filter and some still to go."""
    return run.status == "running" and run.phase == "collect" and 0 < run.cursor < run.total


def _started(run: StageRun, _) -> bool:
    """A stage that does its work in one or two atomic steps (a gate, a selection): started, not done."""
    return run.status == "running"


def _trainer_running(run: StageRun, experiment_id: int) -> bool:
    job = TrainingJob.objects.filter(round__experiment_id=experiment_id, status="running").first()
    return job is not None and bool(job.output_dir) and (Path(job.output_dir) / "starts.log").is_file()


# stage kind -> (recipe, its stage run, when to kill, how long the workers run between looks)
KINDS = {
    "answer": ("lion", "teacher_train", _waiting_on_calls, 0.02),
    "train": ("lion", "train", _trainer_running, 0.02),
    "evaluate": ("lion", "evaluate", _waiting_on_calls, 0.02),
    "judge": ("lion", "judge", _waiting_on_calls, 0.02),
    "discriminate": ("lion", "discriminate", _half_done, 0.002),
    "review_gate": ("lion", "gate_verdicts", _started, 0.001),
    "generate": ("lion", "generate", _collecting, 0.002),
    "pools": ("lion", "pools", _half_done, 0.002),
    "mfd": ("tapir", "mfd", _half_done, 0.002),
    "select_seeds": ("tapir", "select", _started, 0.001),
    "classify": ("tapir", "classify_llm", _waiting_on_calls, 0.02),
    "resample": ("tapir", "resample", _started, 0.001),
    "expand": ("tapir", "expand", _collecting, 0.002),
    "train_pool": ("tapir", "train_pool", _half_done, 0.002),
    "style": ("tapir", "style", _waiting_on_calls, 0.02),
    "next_alpha": ("tapir", "curriculum", _started, 0.001),
    "rationale": ("step_by_step", "rationales", _waiting_on_calls, 0.02),
    "skill_eval": ("mos", "skill_eval", _started, 0.001),
}


# --- workers --------------------------------------------------------------------------------------------------
class Workers:
    """One worker for the llm queue and one for default + gpu (solo pools), as two machines would run."""

    def __init__(self, log_dir: Path, training_root: Path):
        self.log_dir, self.training_root = log_dir, training_root
        self.env = {
            "RETORT_TRAINING_ROOT": str(training_root),
            "RETORT_TRAINER_MODULE": "tests.integration.paced_trainer",
            "RETORT_GENERATOR_MODULE": "tests.integration.paced_trainer",
            "FAKE_TRAINER_SLEEP_S": "0.15",
            "RETORT_TRAINING_HEARTBEAT_S": "0.2",
            "RETORT_STALE_AFTER_S": "1",  # a dead worker's training job is stale after this
            "RETORT_LLM_LEASE_S": "2",  # and its endpoint lease runs out after this (both less than a start)
            "RETORT_LLM_RETRY_BASE_S": "0.01",
            "RETORT_LLM_RETRY_MAX_S": "0.05",
            "RETORT_BROKER_POLL_S": "0.05",  # the file broker's hops between the two workers
        }
        self.procs: list[WorkerProcess] = []

    def start(self) -> "Workers":
        self.procs = [WorkerProcess(self.log_dir, queues=q, **self.env) for q in ("llm", "default,gpu")]
        for proc in self.procs:
            proc.wait_ready()
        return self

    def signal(self, sig) -> None:
        for proc in self.procs:
            if proc.proc.poll() is None:
                os.kill(proc.proc.pid, sig)
        if sig == signal.SIGSTOP:  # delivered asynchronously: look only once both stand still
            for proc in self.procs:
                stat = Path(f"/proc/{proc.proc.pid}/stat")
                deadline = time.monotonic() + 1
                while stat.exists() and stat.read_text().rpartition(")")[2].split()[0] not in "TtZX":
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.0001)

    def kill(self) -> None:
        self.signal(signal.SIGCONT)
        for proc in self.procs:
            proc.kill()
            proc.log.close()

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop()

    def output(self) -> str:
        return "\n".join(proc.output()[-3000:] for proc in self.procs)


@pytest.fixture(scope="module", autouse=True)
def _migrated_rows_from_the_snapshot(django_db_setup, django_db_blocker):
    """Each case's set-up loads the rows migrations made (content types, permissions) from the snapshot
    taken when the test database was created, with their original ids, into tables its predecessor's
    flush emptied. Before the first case the tables are not empty: a transactional test without
    serialized_rollback ran before, and its flush let post_migrate create those rows again. SQLite hands
    out the same ids again (a table's rowids restart once it is empty), but PostgreSQL's sequences go on,
    so the snapshot's rows collide with the new ones on (app_label, model): a duplicate key. So the
    tables are emptied before the first case, and after the last one, whose flush leaves them empty,
    the snapshot is loaded back for the tests that follow."""
    with django_db_blocker.unblock():
        call_command("flush", verbosity=0, interactive=False, inhibit_post_migrate=True)
    yield
    with django_db_blocker.unblock():
        connection.creation.deserialize_db_from_string(connection._test_serialized_contents)
        ContentType.objects.clear_cache()


@pytest.fixture(scope="module")
def workers(_migrated_rows_from_the_snapshot, tmp_path_factory):
    """The live workers, handed from case to case (a case's replacements serve the next one)."""
    root = tmp_path_factory.mktemp("kill")
    holder = {"workers": Workers(root, root / "training").start()}
    yield holder
    holder["workers"].stop()


def _finished(experiment_id: int, workers: Workers, timeout: float = 120) -> Experiment:
    try:
        wait_for(
            lambda: Experiment.objects.get(pk=experiment_id).status in ("finished", "failed", "cancelled", "paused"),
            timeout,
            "the round to end",
        )
    except TimeoutError:
        runs = [(r.name, r.status, r.phase, r.done, r.total) for r in _runs(experiment_id)]
        jobs = list(TrainingJob.objects.filter(round__experiment_id=experiment_id).values_list("status", "attempts"))
        pending = LLMCall.objects.filter(uses__experiment_id=experiment_id, status="pending").count()
        raise TimeoutError(
            f"the round did not end: {runs}, jobs {jobs}, {pending} calls pending\n{workers.output()}"
        ) from None
    experiment = Experiment.objects.get(pk=experiment_id)
    assert experiment.status == "finished", f"{experiment.status}: {experiment.status_reason}\n{workers.output()}"
    return experiment


def _kill_inside(experiment_id: int, workers: Workers, stage: str, ready, slice_s: float) -> dict:
    """Run the workers in slices until `ready` holds while they stand still, then SIGKILL them. Returns what
    the ledger had finished at that moment."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # full speed until the stage two before ours has started
        runs = _runs(experiment_id)
        at = [r.name for r in runs].index(stage)
        if runs[max(at - 2, 0)].status != "pending":
            break
        time.sleep(0.02)
    try:
        while time.monotonic() < deadline:
            workers.signal(signal.SIGSTOP)
            run = StageRun.objects.get(round__experiment_id=experiment_id, name=stage)
            if ready(run, experiment_id):
                finished = set(
                    LLMCall.objects.filter(uses__experiment_id=experiment_id)
                    .exclude(status=LLMCall.Status.PENDING)
                    .values_list("request_hash", flat=True)
                )
                state = (run.status, run.phase, run.done, run.total, run.cursor)
                workers.kill()
                return {"finished": finished, "state": state}
            assert run.status != "done", f"stage {stage} ended before the test could stop inside it"
            workers.signal(signal.SIGCONT)
            time.sleep(slice_s)
    finally:
        workers.signal(signal.SIGCONT)  # never leave a stopped worker holding the database
    raise TimeoutError(f"stage {stage} never reached the point to kill it\n{workers.output()}")


def _round(holder: dict, recipe: str, name: str, kill: str | None = None) -> tuple[dict, dict | None, Counter]:
    old = holder["workers"]
    if any(proc.proc.poll() is not None for proc in old.procs):  # a failed case left them dead
        holder["workers"] = Workers(old.log_dir, old.training_root).start()
    with ServerThread(Faults(latency_s=LATENCY_S)) as server:
        experiment = experiment_create(config=_concurrency(RECIPES[recipe](server, name)))
        experiment_start(experiment_id=experiment.pk, auto_approve=True)
        at_kill = None
        if kill is not None:
            _, stage, ready, slice_s = KINDS[kill]
            old = holder["workers"]
            at_kill = _kill_inside(experiment.pk, old, stage, ready, slice_s)
            if kill == "train":  # the trainer hears of its worker's death (SIGTERM), checkpoints, exits
                job = TrainingJob.objects.get(round__experiment=experiment)
                pid = int((Path(job.output_dir) / "starts.log").read_text().split()[0])
                wait_for(lambda: not Path(f"/proc/{pid}").exists(), 30, "the orphaned trainer to stop")
            # New workers: starting takes longer than the dead ones' lease and heartbeat need to go stale.
            holder["workers"] = Workers(old.log_dir, old.training_root).start()
        experiment = _finished(experiment.pk, holder["workers"])
        sent = Counter(h for _, h, outcome in server.stats().events if outcome == 200)
        # The ledger's rows for requests to this server (offline endpoints, like the local classifier, too
        # keep rows in the ledger but send nothing).
        ledger = set(
            LLMCall.objects.filter(uses__experiment=experiment, endpoint__base_url=server.url).values_list(
                "request_hash", flat=True
            )
        )
    assert set(sent) == ledger, "every request sent has its one ledger row, and every row was sent"
    return experiment_rows(experiment), at_kill, sent


_REFERENCES: dict[str, tuple[dict, Counter]] = {}


def _reference(holder: dict, recipe: str) -> tuple[dict, Counter]:
    if recipe not in _REFERENCES:
        result, _, sent = _round(holder, recipe, f"{recipe}-undisturbed")
        assert all(n == 1 for n in sent.values()), "an undisturbed run sends each request once"
        _REFERENCES[recipe] = (result, sent)
    return _REFERENCES[recipe]


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param(
            kind,
            marks=pytest.mark.skipif(
                ON_POSTGRES and kind not in POSTGRES_KINDS,
                reason=f"on PostgreSQL only {', '.join(POSTGRES_KINDS)}; every kind runs in the embedded phase",
            ),
        )
        for kind in KINDS
    ],
)
def test_a_round_killed_inside_a_stage_ends_as_an_undisturbed_one(kind, workers):
    recipe = KINDS[kind][0]
    reference, reference_sent = _reference(workers, recipe)
    result, at_kill, sent = _round(workers, recipe, f"{recipe}-killed-in-{kind}", kill=kind)
    for key in reference:
        assert result[key] == reference[key], f"{key} differs after a kill at {at_kill['state']}"
    # The same requests reached the server; only calls in flight at the kill were answered twice, never a
    # call the ledger had finished, and each has one ledger row.
    assert len(sent) == len(reference_sent)
    again = {h for h, n in sent.items() if n > 1}
    assert all(sent[h] == 2 for h in again)
    assert not again & at_kill["finished"], "a finished call was paid again"
    assert len(again) <= WINDOW
    if _waiting_on_calls in KINDS[kind]:
        assert at_kill["finished"], "the kill came after some calls had settled"


def test_every_stage_kind_is_killed_somewhere():
    """A new stage kind needs its case here; PostgreSQL's cases cover every recipe once."""
    from apps.experiments.recipes import RECIPES
    from apps.experiments.stages import _kinds

    assert set(_kinds()) == set(KINDS)
    assert sorted(KINDS[kind][0] for kind in POSTGRES_KINDS) == sorted(RECIPES)
