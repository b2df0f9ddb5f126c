"""Writes for experiments: create from a config, start, pause (hold), resume, cancel, approve-and-train.

Every status change goes through the engine's transition table (apps.experiments.engine) under the row
lock. The LLM gateway asks for holds through a signal (see apps.py) and keeps its own hold rows, which
resuming releases.
"""

from django.db import transaction

from apps.core.errors import RetortError
from apps.core.roles import Role, require_role
from apps.experiments import machine as engine
from apps.experiments.machine import IllegalTransition
from apps.experiments.models import Experiment, ExperimentDataset, Round, Snapshot, StageRun
from apps.experiments.wake import wake_on_commit
from apps.llm.services import llm_endpoint_create, llm_endpoint_update, llm_holds_place, llm_holds_release

S = Experiment.Status
# Kept for callers of the hold/resume API: an illegal pause or resume is an illegal transition.
ExperimentTransitionError = IllegalTransition
ROLE_FIELDS = {
    "teacher": "teacher_endpoint",
    "judge": "judge_endpoint",
    "generator": "generator_endpoint",
    "classifier": "classifier_endpoint",
    "student": "student_endpoint",
}


def _locked(experiment_id: int) -> Experiment:
    experiment = Experiment.objects.select_for_update().filter(pk=experiment_id).first()
    if experiment is None:
        raise IllegalTransition(f"No experiment #{experiment_id}.")
    return experiment


# --- create --------------------------------------------------------------------------------------------
def _endpoint_for(resolved, *, by):
    if resolved.create is None:
        return resolved.endpoint
    fields = dict(resolved.create)
    existing = resolved.endpoint
    if existing is None:
        return llm_endpoint_create(by=by, **fields)
    changed = {k: v for k, v in fields.items() if getattr(existing, k, None) != v}
    return llm_endpoint_update(endpoint=existing, by=by, **changed) if changed else existing


def experiment_create(*, config, by=None) -> Experiment:
    """An experiment from a config (an ExperimentConfig, or YAML/JSON text or a dict to parse): config and
    hash frozen, its datasets, inline endpoints created (or updated), its own dataset for what it
    generates, the recipe's set-up and round 1 with its stage runs. The same name with the same config
    returns the existing experiment; with another config it is an error (a changed config is a new
    experiment). `by` None is a trusted caller (a management command)."""
    from apps.experiments.config import ExperimentConfig, parse_config, resolve_config
    from apps.experiments.recipes import recipe_start, round_create
    from apps.experiments.stages.generate import owned_dataset

    if not isinstance(config, ExperimentConfig):
        config = parse_config(config)
    existing = Experiment.objects.filter(name=config.name).first()
    if existing is not None:
        if existing.config_hash == config.hash:
            return existing
        raise RetortError(
            f"An experiment named {config.name!r} already exists with another config (hash "
            f"{existing.config_hash[:12]}, this one {config.hash[:12]}). A config is frozen once created: "
            "give the changed config a new name."
        )
    if by is not None:
        require_role(by, Role.OPERATOR)
    resolved = resolve_config(config)
    with transaction.atomic():
        endpoints = {ROLE_FIELDS[role]: _endpoint_for(r, by=by) for role, r in resolved.endpoints.items()}
        seed = resolved.datasets.get("seed") or resolved.datasets.get("target") or []
        budget = config.budget or {}
        experiment = Experiment(
            name=config.name,
            recipe=config.recipe,
            config=config.to_dict(),
            config_hash=config.hash,
            seed=config.seed,
            dataset=seed[0][0] if seed else None,
            student_model=str(config.student.get("model") or "builtin:tiny"),
            budget_usd=budget.get("usd"),
            budget_tokens=budget.get("tokens"),
            created_by=by if getattr(by, "is_authenticated", False) else None,
            **endpoints,
        )
        experiment.full_clean()
        experiment.save()
        position = 0
        for role, datasets in resolved.datasets.items():
            for dataset, weight in datasets:
                ExperimentDataset.objects.create(
                    experiment=experiment, dataset=dataset, role=role, weight=weight, position=position
                )
                position += 1
        owned_dataset(experiment)
        recipe_start(experiment=experiment)
        try:
            round_create(experiment=experiment, index=1)
        except ValueError as exc:
            raise RetortError(str(exc)) from None
    return experiment


# --- run, pause, resume, cancel ---------------------------------------------------------------------------
@transaction.atomic
def experiment_start(*, experiment_id: int, auto_approve: bool | None = None) -> Experiment:
    """Start a draft experiment (a running one is left as it is); the engine takes it from here."""
    experiment = _locked(experiment_id)
    if auto_approve is not None and experiment.auto_approve != auto_approve:
        experiment.auto_approve = auto_approve
        experiment.save(update_fields=["auto_approve", "updated_at"])
    if experiment.status == S.DRAFT:
        engine.transition(experiment, S.RUNNING, locked=True)
    wake_on_commit(experiment.pk)
    return experiment


def _stage_runs_open(experiment: Experiment):
    return (
        StageRun.objects.select_for_update().filter(round__experiment=experiment).order_by("round__index", "position")
    )


@transaction.atomic
def experiment_hold(*, experiment_id: int, reason: str) -> Experiment:
    """Pause the experiment, remembering the status to return to; a paused one stays paused with the new
    reason. The gateway stops sending its calls (other experiments' calls go on); its stage stops."""
    experiment = _locked(experiment_id)
    if experiment.status in engine.ENDED:
        raise IllegalTransition(
            f"Experiment {experiment.name} is {experiment.get_status_display()}: an ended experiment is not held."
        )
    if experiment.status != S.PAUSED:
        experiment.resume_status = experiment.status
        engine.transition(experiment, S.PAUSED, locked=True)
        for run in _stage_runs_open(experiment).filter(status__in=[StageRun.Status.RUNNING, StageRun.Status.WAITING]):
            run.state = {**run.state, "resume_status": run.status}
            run.save(update_fields=["state"])
            engine.transition(run, StageRun.Status.PAUSED, locked=True)
    experiment.status_reason = reason[:2000]
    experiment.save(update_fields=["resume_status", "status_reason", "updated_at"])
    # The gateway's own record, so its runner stops even when the pause did not start there.
    llm_holds_place(experiment_ids=[experiment.pk], reason=experiment.status_reason, notify=False)
    return experiment


def experiment_pause(*, experiment_id: int, reason: str = "Paused by an operator.", by=None) -> Experiment:
    if by is not None:
        require_role(by, Role.OPERATOR)
    return experiment_hold(experiment_id=experiment_id, reason=reason)


@transaction.atomic
def experiment_resume(*, experiment_id: int, by=None) -> Experiment:
    """Return a paused experiment to the status it was paused from, release the gateway's holds, wake the
    runners that have its calls and the engine."""
    if by is not None:
        require_role(by, Role.OPERATOR)
    experiment = _locked(experiment_id)
    if experiment.status != S.PAUSED:
        raise IllegalTransition(
            f"Experiment {experiment.name} is {experiment.get_status_display()}, not paused: nothing to resume."
        )
    # Paused before the status to return to was remembered: it was running.
    back = experiment.resume_status or S.RUNNING
    experiment.resume_status = ""
    experiment.status_reason = ""
    experiment.save(update_fields=["resume_status", "status_reason", "updated_at"])
    engine.transition(experiment, back, reason="", locked=True)
    for run in _stage_runs_open(experiment).filter(status=StageRun.Status.PAUSED):
        engine.transition(run, run.state.get("resume_status") or StageRun.Status.RUNNING, locked=True)
    llm_holds_release(experiment_id=experiment.pk)
    wake_on_commit(experiment.pk)
    return experiment


@transaction.atomic
def experiment_cancel(*, experiment_id: int, reason: str = "Cancelled by an operator.", by=None) -> Experiment:
    """Stop for good: the open round and stage are cancelled and the gateway sends none of its calls."""
    if by is not None:
        require_role(by, Role.OPERATOR)
    experiment = _locked(experiment_id)
    rounds = Round.objects.select_for_update().filter(experiment=experiment, status__in=engine.ROUND_OPEN)
    for round_ in rounds.order_by("index"):
        for run in StageRun.objects.select_for_update().filter(round=round_, status__in=engine.STAGE_OPEN):
            engine.transition(run, StageRun.Status.CANCELLED, locked=True)
        engine.transition(round_, Round.Status.CANCELLED, locked=True)
    engine.transition(experiment, S.CANCELLED, reason=reason, locked=True)
    llm_holds_place(experiment_ids=[experiment.pk], reason=reason, notify=False)
    return experiment


def experiment_wake(*, experiment_id: int) -> None:
    """Ask the engine to look at the experiment again (a reviewer decided a gate's last task, say)."""
    wake_on_commit(experiment_id)


# --- approve and train ---------------------------------------------------------------------------------
def experiment_approve_and_train(*, experiment_id: int, by=None):
    """Freeze the current round's snapshot and queue its training job, exactly once however often it is
    pressed: a second press returns the same job."""
    from apps.experiments.training import approve_and_train_locked
    from apps.training.models import TrainingJob

    if by is not None:
        require_role(by, Role.OPERATOR)
    with transaction.atomic():
        experiment = _locked(experiment_id)
        round_ = engine.current_round(experiment, lock=True)
        run = (
            StageRun.objects.select_for_update().filter(round=round_, kind="train").order_by("position").first()
            if round_
            else None
        )
        if run is None:
            raise RetortError(f"Experiment {experiment.name} has no round waiting to train.")
        if Snapshot.objects.filter(round=round_).exists():
            job = TrainingJob.objects.filter(round=round_).order_by("-id").first()
            if job is not None:
                return job
        if experiment.status != S.WAITING_APPROVAL or run.status != StageRun.Status.WAITING:
            raise IllegalTransition(
                f"Experiment {experiment.name} is {experiment.get_status_display()}, not waiting for approval."
            )
        job = approve_and_train_locked(experiment, round_, run, by=by)
        wake_on_commit(experiment.pk)
        return job
