"""Without a served student, the student answers on a gpu worker with the round's trained checkpoint
(apps.training's generation jobs): the answer stage does not know the difference."""

import pytest

from apps.experiments.models import Experiment, StageRun
from apps.experiments.services import experiment_create, experiment_start
from apps.judging.models import Judgment, Response
from apps.training.models import Artifact, GenerationItem, GenerationJob, TrainingJob
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset

pytestmark = pytest.mark.django_db


def test_the_local_student_answers_with_the_rounds_checkpoint(llm_server):
    config = lion_config(llm_server, seed_dataset(), params={"rounds": 1})
    del config["endpoints"]["student"]
    experiment = experiment_create(config=config)
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    experiment = drive(
        experiment, until=lambda e: TrainingJob.objects.filter(round__experiment=e).exists(), train=False
    )
    job = TrainingJob.objects.get(round__experiment=experiment)
    Artifact.objects.create(
        kind="adapter",
        training_job=job,
        round=job.round,
        path="/tmp/a",
        sha256="ab" * 32,
        size_bytes=1,
        base_model="builtin:tiny",
    )
    experiment = drive(experiment)  # marks training done; the student's batches go to generation jobs
    run = StageRun.objects.get(round__experiment=experiment, name="student_cache")
    assert (run.status, run.phase) == ("running", "wait")
    jobs = list(GenerationJob.objects.filter(round__experiment=experiment))
    assert len(jobs) == 3  # 12 instructions in batches of 5
    assert {j.artifact_id for j in jobs} == {Artifact.objects.get().pk}
    drive(experiment)  # nothing moves while the jobs run
    assert StageRun.objects.get(pk=run.pk).phase == "wait"
    items = list(GenerationItem.objects.filter(job__in=jobs).order_by("pk"))
    for item in items:
        item.text = f"student says: {item.prompt[:20]}"
        item.save(update_fields=["text"])
    # A tiny student may say nothing at all: that is its answer, for the judge to score, not a failure.
    GenerationItem.objects.filter(pk=items[0].pk).update(text="")
    GenerationJob.objects.filter(pk__in=[j.pk for j in jobs]).update(status="succeeded", done_count=5)
    experiment = drive(experiment)
    assert experiment.status == Experiment.Status.FINISHED, experiment.status_reason
    answers = Response.objects.filter(round__experiment=experiment, role="student")
    assert answers.count() == 12
    assert {(a.checkpoint, a.model) for a in answers} == {("ab" * 32, "builtin:tiny")}
    assert sorted(a.text.startswith("student says: ") for a in answers) == [False] + [True] * 11
    assert answers.filter(text="").count() == 1
    assert Judgment.objects.filter(round__experiment=experiment).count() == 12
