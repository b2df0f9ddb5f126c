"""One world for the API tests, made by the real services and engine against the local OpenAI-compatible
test server: a Lion experiment that trained and waits at its review gate, a second one waiting for
approve-and-train, a draft, plus what a gpu worker and an export worker would have left (metrics, an
adapter on disk, an evaluation, a finished export). Ids are in `World`."""

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.core.roles import Role
from apps.datasets.models import ImportJob
from apps.experiments.exports.services import export_run, export_start
from apps.experiments.models import Evaluation, EvaluationCategory, Experiment, Round
from apps.experiments.services import (
    experiment_approve_and_train,
    experiment_create,
    experiment_pause,
    experiment_start,
)
from apps.judging.models import Judgment, Response
from apps.llm.models import LLMCall, LLMEndpoint
from apps.reviews.models import ReviewTask, ReviewVerdict
from apps.reviews.services import review_decide
from apps.training.models import Artifact, TrainingJob, TrainingMetric
from tests.apps.experiments.conftest import drive, lion_config, seed_dataset
from tests.factories import UserFactory

# "admin" is a superuser (staff too): every role's rights, plus the Django admin and choosing key variables.
ROLES = ("anonymous", "none", "viewer", "reviewer", "operator", "admin")
LEVEL = {"anonymous": -1, "none": 0, "viewer": 1, "reviewer": 2, "operator": 3, "admin": 4}
_ROLE = {"viewer": Role.VIEWER, "reviewer": Role.REVIEWER, "operator": Role.OPERATOR}


@dataclass
class World:
    users: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    ids: dict = field(default_factory=dict)
    dataset_name: str = ""

    def client(self, role: str) -> APIClient:
        api = APIClient()
        if role != "anonymous":
            api.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[role]}")
            api.user = self.users[role]
        return api


def _users(world: World) -> None:
    for role in ROLES[1:]:
        admin = role == "admin"
        user = UserFactory(role=_ROLE.get(role), is_superuser=admin, is_staff=admin)
        world.users[role] = user
        world.tokens[role] = Token.objects.create(user=user).key


def _adapter(job: TrainingJob, root: Path) -> Artifact:
    """What a finished trainer leaves: a LoRA adapter folder and its registry row with the files' hashes."""
    folder = root / f"job-{job.pk}" / "adapter"
    folder.mkdir(parents=True, exist_ok=True)
    contents = {"adapter_config.json": b'{"r": 8}', "adapter_model.safetensors": os.urandom(2048)}
    files = []
    for name, data in contents.items():
        (folder / name).write_bytes(data)
        files.append({"path": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
    manifest = "".join(f"{f['sha256']}  {f['path']}\n" for f in files).encode()
    return Artifact.objects.create(
        kind=Artifact.Kind.ADAPTER,
        training_job=job,
        round=job.round,
        path=str(folder),
        sha256=hashlib.sha256(manifest).hexdigest(),
        size_bytes=sum(f["bytes"] for f in files),
        base_model="builtin:tiny",
        snapshot_hash=job.snapshot.hash,
        metadata={"files": files, "steps": 4},
    )


def build_world(server, root: Path) -> World:
    world = World()
    _users(world)
    operator = world.users["operator"]
    dataset = seed_dataset(6)
    world.dataset_name = dataset.name
    review = {"hard_verdicts": "all", "generated": "all"}
    params = {"rounds": 1, "new_per_round": 4, "batch_size": 3}

    # A: trained, then waiting for reviewers at its verdict gate.
    trained = experiment_create(config=lion_config(server, dataset, review=review, params=params), by=operator)
    experiment_start(experiment_id=trained.pk)
    drive(trained, train=False)
    job = experiment_approve_and_train(experiment_id=trained.pk, by=operator)
    trained = drive(trained)
    assert trained.status == Experiment.Status.WAITING_REVIEW, trained.status_reason
    job.refresh_from_db()
    TrainingMetric.objects.bulk_create(
        [
            TrainingMetric(job=job, step=s, name=n, value=v / s)
            for s in (1, 2, 3, 4)
            for n, v in (("loss", 2.0), ("lr", 1e-3))
        ]
    )
    adapter = _adapter(job, root)
    weights = Artifact.objects.create(
        kind=Artifact.Kind.WEIGHTS, round=job.round, path=str(root / "missing"), sha256="0" * 64, size_bytes=1
    )
    round_ = Round.objects.get(experiment=trained, index=1)
    evaluation = Evaluation.objects.create(
        experiment=trained, round=round_, stage="evaluate", n=4, judged=4, wins=1, ties=2, losses=1, win_rate=0.5
    )
    EvaluationCategory.objects.create(evaluation=evaluation, category="generation", n=4, win_rate=0.5)

    # B: waiting for approve-and-train; C: a draft nobody started.
    waiting = experiment_create(
        config=lion_config(server, dataset, review=review, params=params, name=f"{trained.name}-b"), by=operator
    )
    experiment_start(experiment_id=waiting.pk)
    waiting = drive(waiting, train=False)
    assert waiting.status == Experiment.Status.WAITING_APPROVAL, waiting.status_reason
    draft = experiment_create(
        config=lion_config(server, dataset, review=review, params=params, name=f"{trained.name}-c"), by=operator
    )

    paused = experiment_create(
        config=lion_config(server, dataset, review=review, params=params, name=f"{trained.name}-d"), by=operator
    )
    experiment_pause(experiment_id=paused.pk, by=operator)

    export = export_start(by=world.users["viewer"], fmt="openai", dataset=dataset.name)
    export = export_run(job_id=export.pk)
    assert export.status == "succeeded", export.error
    imported = ImportJob.objects.create(dataset_name=dataset.name, dataset=dataset, source_path="/nonexistent")

    tasks = list(ReviewTask.objects.filter(round=round_, kind="verdict").order_by("pk"))
    assert len(tasks) >= 3, "the verdict gate opened fewer than three tasks"
    task, disputed, decided = tasks[0], tasks[1], tasks[-1]
    review_decide(reviewer=world.users["reviewer"], task_id=decided.pk, decision="accept", note="fine")
    # Two reviewers who disagree (the gate's overlap raised to two for this task) leave it to an operator.
    ReviewTask.objects.filter(pk=disputed.pk).update(required_reviews=2)
    review_decide(reviewer=world.users["reviewer"], task_id=disputed.pk, decision="accept")
    review_decide(reviewer=UserFactory(role=Role.REVIEWER), task_id=disputed.pk, decision="flip")
    world.ids = {
        "dataset": dataset.pk,
        "instruction": dataset.instructions.order_by("pk").first().pk,
        "experiment": trained.pk,
        "waiting": waiting.pk,
        "draft": draft.pk,
        "round": round_.pk,
        "stage": round_.stage_runs.order_by("position").first().pk,
        "response": Response.objects.filter(round=round_).order_by("pk").first().pk,
        "judgment": Judgment.objects.filter(round=round_).order_by("pk").first().pk,
        "task": task.pk,
        "decided_task": decided.pk,
        "conflict_task": disputed.pk,
        "paused": paused.pk,
        "verdict": ReviewVerdict.objects.get(task=decided).pk,
        "job": job.pk,
        "adapter": adapter.pk,
        "weights": weights.pk,
        "evaluation": evaluation.pk,
        "export": export.pk,
        "export_file": export.files[0]["name"],
        "import": imported.pk,
        "endpoint": LLMEndpoint.objects.order_by("pk").first().pk,
        "call": LLMCall.objects.order_by("pk").first().pk,
    }
    return world
