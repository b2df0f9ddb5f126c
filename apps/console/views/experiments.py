"""The experiments list, an experiment's page and its live parts (HTMX partials), and the operator's
actions on it: start, pause, resume, cancel, approve-and-train.

Live parts poll while they can change: a stage run's row until the stage ends (answered with HTTP 286,
which stops htmx polling); a change of stage status asks the page's live area to refresh itself (the
`consoleChanged` event). Actions are POST-only for operators; without JavaScript their buttons open a
confirmation page (GET), with it htmx confirms in a dialog and swaps the live area.
"""

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from apps.console import selectors
from apps.core.decorators import role_required
from apps.core.errors import RetortError
from apps.core.htmx import stop_polling
from apps.core.roles import Role
from apps.experiments import machine
from apps.experiments.evaluation import experiment_evaluations
from apps.experiments.models import Experiment, StageRun
from apps.experiments.services import (
    experiment_approve_and_train,
    experiment_cancel,
    experiment_pause,
    experiment_resume,
    experiment_start,
)
from apps.training.models import TrainingJob
from apps.training.selectors import training_metric_latest

CHANGED_EVENT = "consoleChanged"


def _before(request) -> int | None:
    value = request.GET.get("before", "")
    return int(value) if value.isdigit() else None


@role_required(Role.VIEWER)
def experiment_list(request):
    rows, next_before = selectors.experiment_page_rows(before=_before(request))
    return render(
        request,
        "console/experiment_list.html",
        {"experiments": rows, "next_before": next_before, "paged": _before(request) is not None},
    )


def _live_context(experiment: Experiment) -> dict:
    rounds = selectors.experiment_rounds(experiment_id=experiment.pk)
    can_approve, approve_reason = selectors.approval_state(experiment, rounds)
    live_stage = next((view.live_stage for view in rounds if view.live_stage is not None), None)
    trained = [view for view in rounds if view.job is not None]
    evaluations = experiment_evaluations(experiment_id=experiment.pk)
    open_round = next((view.round for view in rounds if view.round.status in machine.ROUND_OPEN), None)
    shown_round = open_round or (rounds[-1].round if rounds else None)
    return {
        "experiment": experiment,
        "rounds": rounds,
        "rounds_planned": selectors.planned_rounds(experiment),
        "rounds_to_come": range(len(rounds) + 1, selectors.planned_rounds(experiment) + 1),
        "live_stage": live_stage,
        "active": experiment.status in machine.ACTIVE,
        "ended": experiment.status in machine.ENDED,
        "budget": selectors.experiment_budget(experiment=experiment),
        "can_approve": can_approve,
        "approve_reason": approve_reason,
        "round_index": shown_round.index if shown_round else 0,
        "training": trained[-1] if trained else None,
        "job_latest": training_metric_latest(job_id=trained[-1].job.pk) if trained else {},
        "older_jobs": [view.job for view in trained[:-1]],
        "evaluations": evaluations["rounds"],
        "has_categories": bool(evaluations["categories"]),
    }


@role_required(Role.VIEWER)
def experiment_detail(request, pk: int):
    experiment = get_object_or_404(Experiment, pk=pk)
    return render(request, "console/experiment_detail.html", _live_context(experiment))


@role_required(Role.VIEWER)
def experiment_live(request, pk: int):
    """The page's live area alone: refreshed when a stage changes status, or every few seconds while the
    experiment is active with no stage to watch (between rounds). An ended experiment stops the polling."""
    experiment = get_object_or_404(Experiment, pk=pk)
    response = render(request, "console/_live.html", _live_context(experiment))
    return stop_polling(response) if experiment.status in machine.ENDED else response


@role_required(Role.VIEWER)
def stage_progress(request, pk: int, stage_pk: int):
    """One stage run's row: done/total/failed and cost, with the experiment's spend against its budget
    swapped beside it. 286 once the stage has ended; `consoleChanged` when its status is not the one the
    page last showed (`seen`), so the page refreshes what depends on it (the next stage, the buttons)."""
    run = get_object_or_404(StageRun.objects.select_related("round__experiment"), pk=stage_pk, round__experiment_id=pk)
    experiment = run.round.experiment
    context = {
        "experiment": experiment,
        "run": run,
        "budget": selectors.experiment_budget(experiment=experiment),
        "oob_budget": True,
        "poll": run.status in selectors.STAGE_LIVE,
    }
    response = render(request, "console/_stage_row.html", context)
    if request.GET.get("seen", run.status) != run.status:
        response["HX-Trigger-After-Settle"] = CHANGED_EVENT
    return stop_polling(response) if run.status not in selectors.STAGE_LIVE else response


@role_required(Role.VIEWER)
def training_status(request, pk: int, job_pk: int):
    """The round's training job: status, steps, latest loss and ETA; 286 once it has finished."""
    job = get_object_or_404(TrainingJob.objects.select_related("round"), pk=job_pk, round__experiment_id=pk)
    context = {"job": job, "experiment_pk": pk, "job_latest": training_metric_latest(job_id=job.pk)}
    response = render(request, "console/_job_status.html", context)
    if job.is_finished:
        response["HX-Trigger-After-Settle"] = CHANGED_EVENT
        return stop_polling(response)
    return response


# --- actions ----------------------------------------------------------------------------------------------
ACTIONS = {
    "start": {
        "title": "Start",
        "question": "Start {name}? Its round 1 begins, and so do its LLM calls.",
        "done": "Started.",
    },
    "pause": {
        "title": "Pause",
        "question": "Pause {name}? Its LLM calls stop being sent; other experiments go on.",
        "done": "Paused.",
    },
    "resume": {"title": "Resume", "question": "Resume {name} where it was paused?", "done": "Resumed."},
    "cancel": {
        "title": "Cancel",
        "question": "Cancel {name} for good? Its open round and stage are cancelled; this cannot be undone.",
        "done": "Cancelled.",
    },
    "approve": {
        "title": "Approve and train",
        "question": "Approve round {round} of {name} and train the student on its frozen training set?",
        "done": "Approved: training job #{job} is queued.",
    },
}


def _act(action: str, experiment: Experiment, user) -> str:
    info = ACTIONS[action]
    if action == "start":
        experiment_start(experiment_id=experiment.pk)
    elif action == "pause":
        experiment_pause(experiment_id=experiment.pk, reason=f"Paused by {user.get_username()}.", by=user)
    elif action == "resume":
        experiment_resume(experiment_id=experiment.pk, by=user)
    elif action == "cancel":
        experiment_cancel(experiment_id=experiment.pk, reason=f"Cancelled by {user.get_username()}.", by=user)
    else:
        job = experiment_approve_and_train(experiment_id=experiment.pk, by=user)
        return info["done"].format(job=job.pk)
    return info["done"]


@require_http_methods(["GET", "POST"])
@role_required(Role.OPERATOR)
def experiment_action(request, pk: int, action: str):
    if action not in ACTIONS:
        raise Http404("No such action.")
    experiment = get_object_or_404(Experiment, pk=pk)
    if request.method == "GET":  # the confirmation step of the page without JavaScript
        current = machine.current_round(experiment)
        question = ACTIONS[action]["question"].format(name=experiment.name, round=current.index if current else "–")
        return render(
            request,
            "console/experiment_confirm.html",
            {"experiment": experiment, "action": action, "title": ACTIONS[action]["title"], "question": question},
        )
    error = ""
    try:
        done = _act(action, experiment, request.user)
    except RetortError as exc:
        error = str(exc)
    if request.htmx:
        experiment.refresh_from_db()
        context = {**_live_context(experiment), "action_message": error or done, "action_failed": bool(error)}
        response: HttpResponse = render(request, "console/_live.html", context)
        return response
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect("console:experiment", pk=pk)
