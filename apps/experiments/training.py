"""Approve-and-train: freeze the round's snapshot and queue exactly one training job for it."""

from apps.experiments import machine as engine
from apps.experiments.models import Experiment, Round, StageRun
from apps.experiments.snapshots import snapshot_freeze, snapshot_write_jsonl

# Student config keys that are not trainer fields.
_NOT_TRAINER = ("model",)


def training_spec(experiment: Experiment, data_path: str) -> dict:
    student = dict(experiment.config.get("student") or {})
    spec = {key: value for key, value in student.items() if key not in _NOT_TRAINER}
    spec.update(
        base_model=student.get("model") or experiment.student_model,
        data_path=data_path,
        method="sft",
        seed=int(experiment.seed) & 0x7FFFFFFF,
    )
    return spec


def approve_and_train_locked(experiment: Experiment, round_: Round, run: StageRun, *, by=None):
    """With the experiment, round and stage run locked by the caller: the snapshot (made once), the job
    (queued once: apps.training's service returns the round's existing job), and the round and experiment
    marked training."""
    from apps.training import conf
    from apps.training.services import training_job_enqueue

    snapshot = snapshot_freeze(round_=round_, params=run.params.get("snapshot", {}), by=by)
    if snapshot.size == 0:
        raise engine.StageError(f"Round {round_.index} has nothing to train on: its snapshot is empty.")
    path = snapshot_write_jsonl(snapshot, conf.training_root() / "snapshots")
    spec = training_spec(experiment, str(path))
    # A recipe's train stage may name its method and method_params (and mos its held-out rows).
    from apps.experiments.snapshot_items import training_fields

    spec.update(training_fields(round_, run.params, conf.training_root() / "snapshots"))
    job = training_job_enqueue(round_id=round_.pk, snapshot_id=snapshot.pk, spec=spec, by=by)
    if getattr(by, "is_authenticated", False) and round_.approved_by_id is None:
        from django.utils import timezone

        Round.objects.filter(pk=round_.pk).update(approved_by=by, approved_at=timezone.now())
    if run.status == StageRun.Status.RUNNING:
        engine.transition(run, StageRun.Status.WAITING, locked=True)
    if round_.status != Round.Status.TRAINING:
        if round_.status not in (Round.Status.WAITING_APPROVAL,):
            engine.set_round_status(round_, Round.Status.RUNNING)
        engine.set_round_status(round_, Round.Status.TRAINING)
    if experiment.status != Experiment.Status.TRAINING:
        if experiment.status != Experiment.Status.WAITING_APPROVAL:
            engine.set_experiment_status(experiment, Experiment.Status.RUNNING)
        engine.set_experiment_status(experiment, Experiment.Status.TRAINING)
    return job
