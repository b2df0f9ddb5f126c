"""The review pages' POSTs: a vote, an operator's resolution, skip, release (also sent as a beacon when the
page is left), drafts, and bulk decisions from the table.

Each works without JavaScript (POST, then a redirect: to the next item, or back with the message on the
page) and with HTMX (the focus panel swapped for the next item, or re-rendered with the error, status
422). The services check the role again, so a forged POST answers 403 whatever the page showed."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from apps.console import review_focus as nav
from apps.console.review_forms import BulkForm, DecisionForm, DraftForm
from apps.console.review_views import check_kind, claim_for, render_focus
from apps.core.decorators import role_required
from apps.core.roles import Role
from apps.reviews.claiming import review_release
from apps.reviews.kinds import Decision, ReviewError
from apps.reviews.models import ReviewTask
from apps.reviews.services import (
    review_bulk_decide,
    review_decide,
    review_draft_discard,
    review_draft_save,
    review_resolve,
)

UNPROCESSABLE = 422  # review.js lets htmx swap this status: the panel with its error


def _form_error(form) -> str:
    return " ".join(f"{'' if field == '__all__' else field + ': '}{e}" for field, es in form.errors.items() for e in es)


def _task(kind: str, pk: int) -> ReviewTask:
    return get_object_or_404(ReviewTask, pk=pk, kind=check_kind(kind))


def _refused(request, kind, task, scope, error: str):
    """The action could not be taken: the same task again with the reason."""
    if request.htmx:
        return render_focus(request, kind, task, scope, current=False, error=error, status=UNPROCESSABLE, partial=True)
    messages.error(request, error)
    return redirect(scope.url("task", kind, task.pk))


def _onwards(request, kind, scope, notice: str):
    """After a vote or a skip: the reviewer's next task."""
    if not request.htmx:
        messages.success(request, notice)
        return redirect(scope.url("queue", kind))
    response = render_focus(request, kind, claim_for(request, kind, scope), scope, current=True, notice=notice)
    response["HX-Push-Url"] = scope.url("queue", kind)
    return response


def _said(task: ReviewTask, decision: str) -> str:
    what = {"done": "decided", "conflict": "in conflict: its reviewers disagree", "claimed": "waiting for more votes"}
    return f"Task #{task.pk}: {Decision(decision).label}; {what.get(task.status, task.get_status_display())}."


@require_POST
@role_required(Role.REVIEWER)
def decide(request, kind: str, pk: int):
    task = _task(kind, pk)
    scope, _ = nav.scope_from(request.POST)
    form = DecisionForm(request.POST, kind=kind)
    if not form.is_valid():
        return _refused(request, kind, task, scope, _form_error(form))
    data = form.cleaned_data
    try:
        task = review_decide(
            reviewer=request.user,
            task_id=task.pk,
            decision=data["decision"],
            edited_text=data["edited_text"],
            note=data["note"],
        )
    except ReviewError as exc:
        return _refused(request, kind, task, scope, str(exc))
    nav.trail_push(request.session, kind, task.pk)
    return _onwards(request, kind, scope, _said(task, data["decision"]))


@require_POST
@role_required(Role.OPERATOR)
def resolve(request, kind: str, pk: int):
    """An operator settles a conflict; he stays on the task to see the resolution."""
    task = _task(kind, pk)
    scope, _ = nav.scope_from(request.POST)
    form = DecisionForm(request.POST, kind=kind)
    if not form.is_valid():
        return _refused(request, kind, task, scope, _form_error(form))
    data = form.cleaned_data
    try:
        task = review_resolve(
            by=request.user, task_id=task.pk, decision=data["decision"], edited_text=data["edited_text"],
            note=data["note"],
        )  # fmt: skip
    except ReviewError as exc:
        return _refused(request, kind, task, scope, str(exc))
    notice = f"Task #{task.pk} resolved: {Decision(data['decision']).label}."
    if request.htmx:
        return render_focus(request, kind, task, scope, current=False, notice=notice, partial=True)
    messages.success(request, notice)
    return redirect(scope.url("task", kind, task.pk))


@require_POST
@role_required(Role.REVIEWER)
def skip(request, kind: str, pk: int):
    """Leave this task for later (its slot is freed) and take the next one not skipped."""
    task = _task(kind, pk)
    scope, _ = nav.scope_from(request.POST)
    review_release(reviewer=request.user, task_id=task.pk)
    nav.skip_add(request.session, kind, task.pk)
    nav.trail_push(request.session, kind, task.pk)
    return _onwards(request, kind, scope, f"Task #{task.pk} skipped; it stays in the queue.")


@require_POST
@role_required(Role.REVIEWER)
def release(request, kind: str, pk: int):
    """Give the task back: sent by review.js as a beacon when the page is left (answered 204), or by the
    "leave the queue" button (back to the overview)."""
    task = _task(kind, pk)
    released = review_release(reviewer=request.user, task_id=task.pk)
    if request.POST.get("beacon"):
        return HttpResponse(status=204)
    if released:
        messages.info(request, f"Task #{task.pk} is back in the queue for others.")
    return redirect("reviews:overview")


@require_POST
@role_required(Role.REVIEWER)
def draft_save(request, kind: str, pk: int):
    task = _task(kind, pk)
    scope, _ = nav.scope_from(request.POST)
    form = DraftForm(request.POST)
    if not form.is_valid():
        return _refused(request, kind, task, scope, _form_error(form))
    try:
        review_draft_save(reviewer=request.user, task_id=task.pk, **form.cleaned_data)
    except ReviewError as exc:
        if request.htmx:
            return HttpResponse(format_html('<span class="error">{}</span>', exc), status=UNPROCESSABLE)
        return _refused(request, kind, task, scope, str(exc))
    saved = f"Draft saved at {timezone.localtime():%H:%M:%S}."
    if request.htmx:
        return HttpResponse(format_html('<span data-testid="draft-saved">{}</span>', saved))
    messages.success(request, saved)
    return redirect(scope.url("task", kind, task.pk))


@require_POST
@role_required(Role.REVIEWER)
def draft_discard(request, kind: str, pk: int):
    task = _task(kind, pk)
    scope, _ = nav.scope_from(request.POST)
    dropped = review_draft_discard(reviewer=request.user, task_id=task.pk)
    notice = "Draft discarded." if dropped else "There was no draft to discard; the form is reset."
    current = request.POST.get("current") == "1"
    if request.htmx:
        return render_focus(request, kind, task, scope, current=current, notice=notice, partial=True)
    messages.info(request, notice)
    return redirect(scope.url("queue", kind) if current else scope.url("task", kind, task.pk))


def _back_to_table(request, kind: str) -> str:
    """Where the bulk form came from (a table URL of this kind), else the table itself."""
    back = request.POST.get("back", "")
    table = nav.Scope().url("table", kind)
    return back if back.startswith(table) and "//" not in back else table


@require_POST
@role_required(Role.REVIEWER)
def bulk(request, kind: str):
    check_kind(kind)
    back = _back_to_table(request, kind)
    form = BulkForm(request.POST, kind=kind)
    if not form.is_valid():
        messages.error(request, _form_error(form))
        return redirect(back)
    data = form.cleaned_data
    try:
        outcome = review_bulk_decide(
            reviewer=request.user, task_ids=data["task"], decision=data["decision"],
            edited_text=data["edited_text"], note=data["note"],
        )  # fmt: skip
    except ReviewError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    label = Decision(data["decision"]).label
    messages.success(request, f"{label}: {outcome.decided} task(s) voted on, {outcome.done} of them now decided.")
    if outcome.skipped:
        shown = "; ".join(f"#{pk}: {reason}" for pk, reason in outcome.skipped[:5])
        more = f" (and {len(outcome.skipped) - 5} more)" if len(outcome.skipped) > 5 else ""
        messages.warning(request, f"{len(outcome.skipped)} skipped: {shown}{more}")
    return redirect(back)
