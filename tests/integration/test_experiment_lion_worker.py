"""run_experiment from a plain shell: the command (a subprocess) finds no worker answering, starts its own
Celery worker process, and the Lion recipe runs through it against the local LLM test server."""

import json
import subprocess
import sys

import pytest
from django.core.management import call_command

from apps.experiments.models import Experiment, StageRun
from apps.experiments.services import experiment_approve_and_train
from apps.judging.models import Judgment
from apps.llm.models import LLMCall
from apps.reviews.models import ReviewTask
from apps.training.models import TrainingJob
from tests.apps.experiments.conftest import lion_config, seed_dataset
from tests.conftest import REPO_ROOT
from tests.integration.worker import worker_env
from tests.llm_server.server import ServerThread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _run_experiment(name: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "run_experiment", name, *args, "--timeout", str(timeout)],
        cwd=REPO_ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=timeout + 60,
    )


def test_run_experiment_until_review_with_its_own_worker(tmp_path, settings):
    with ServerThread() as server:
        config = lion_config(server, seed_dataset(), name="lion-worker", params={"rounds": 1})
        path = tmp_path / "lion.json"
        path.write_text(json.dumps(config))
        call_command("create_experiment", "--config", str(path))
        experiment = Experiment.objects.get(name="lion-worker")

        # Round 1 imitates first: the teacher answers the train pool, then training waits for an operator.
        done = _run_experiment("lion-worker", "--until", "review")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Started a worker for default, llm" in done.stderr
        experiment.refresh_from_db()
        assert experiment.status == Experiment.Status.WAITING_APPROVAL
        assert StageRun.objects.get(round__experiment=experiment, name="teacher_train").status == "done"
        paid = LLMCall.objects.count()
        assert paid == server.stats().requests == 12

        # The operator approves; the job is reported done as the gpu worker would.
        job = experiment_approve_and_train(experiment_id=experiment.pk)
        TrainingJob.objects.filter(pk=job.pk).update(status="succeeded")

        # Student and teacher answer the cache pool (the teacher from the ledger), the judge both orders,
        # then the round holds at the verdicts' review gate.
        done = _run_experiment("lion-worker", "--until", "review")
        assert done.returncode == 0, done.stdout + done.stderr
        experiment.refresh_from_db()
        assert experiment.status == Experiment.Status.WAITING_REVIEW, experiment.status_reason
        assert StageRun.objects.get(round__experiment=experiment, name="gate_verdicts").status == "waiting"
        assert Judgment.objects.filter(round__experiment=experiment).count() == 12
        assert ReviewTask.objects.filter(round__experiment=experiment, kind="verdict").exists()
        assert LLMCall.objects.count() == server.stats().requests == paid + 12 + 24  # student + judge x2
        assert "lion-worker" in done.stderr  # progress lines
