"""The review pages people read: the queues' overview, a queue's focus view (one item, keyboard-driven) and
its table (filters, keyset pages, selection for bulk decisions). Their POSTs are in review_actions.

Everyone with the viewer role reads; the focus view claims a task (with a lease) only for reviewers, and
shows readers the queue's waiting tasks in order without holding any."""

from django.http import Http404
from django.shortcuts import get_object_or_404, render

from apps.console import review_focus as nav
from apps.console.review_forms import QueueFilterForm
from apps.console.review_queries import judge_agreement, queue_cards, queue_filter, scope_choices, task_page
from apps.console.review_selectors import focus_of, review_items, task_vocabulary
from apps.core.decorators import role_required
from apps.core.roles import Role, has_role
from apps.llm.selectors import classifier_versions
from apps.reviews.claiming import review_claim_next
from apps.reviews.kinds import ALLOWED, Kind
from apps.reviews.models import ReviewAssignment, ReviewTask

PANEL = "review/focus.html#focus-panel"


def check_kind(kind: str) -> str:
    if kind not in ALLOWED:
        raise Http404(f"There is no review queue named {kind!r}; the queues are: {', '.join(ALLOWED)}.")
    return kind


@role_required(Role.VIEWER)
def overview(request):
    scope, errors = nav.scope_from(request.GET)
    experiments, rounds = scope_choices(experiment_id=scope.experiment)
    context = {
        "scope": scope,
        "scope_errors": errors,
        "cards": queue_cards(experiment_id=scope.experiment, round_id=scope.round),
        "overturns": judge_agreement(experiment_id=scope.experiment, round_id=scope.round),
        "experiments": experiments,
        "rounds": rounds,
    }
    return render(request, "review/overview.html", context, status=400 if errors else 200)


def claim_for(request, kind: str, scope: nav.Scope) -> ReviewTask | None:
    """The task this reviewer works on next: passing over what he skipped, and once only skipped tasks
    are left, starting over with them."""
    skipped = nav.skipped(request.session, kind)
    task = review_claim_next(
        reviewer=request.user, kind=kind, exclude_ids=skipped, round_ids=scope.round_ids, experiment_id=scope.experiment
    )
    if task is None and skipped:
        nav.skips_clear(request.session, kind)
        task = review_claim_next(
            reviewer=request.user, kind=kind, round_ids=scope.round_ids, experiment_id=scope.experiment
        )
    return task


def focus_context(request, kind: str, task: ReviewTask | None, scope: nav.Scope, *, current: bool, **extra) -> dict:
    user = request.user
    reviewer = has_role(user, Role.REVIEWER)
    context = {
        "kind": kind,
        "kind_label": Kind(kind).label,
        "scope": scope,
        "counts": nav.scope_counts(kind, scope),
        "task": task,
        "current": current,
        "can_decide": False,
        "can_resolve": False,
        "queue_url": scope.url("queue", kind),
        "table_url": scope.url("table", kind),
        "vocabulary": task_vocabulary() if kind == Kind.TASK_LABEL else (),
        **extra,
    }
    if task is None:
        return context
    focus = focus_of(task=task, reviewer=user)
    item = focus.item
    verdict = item.judgment.verdict if item.judgment is not None else ""
    S = ReviewTask.Status
    can_decide = (
        reviewer
        and not item.missing
        and (task.status in (S.OPEN, S.CLAIMED) or (task.status == S.CONFLICT and focus.my_vote is not None))
    )
    context.update(
        focus=focus,
        item=item,
        buttons=nav.buttons(kind, verdict=verdict),
        can_decide=can_decide,
        can_resolve=task.status == S.CONFLICT and has_role(user, Role.OPERATOR),
        nav=nav.nav_for_reviewer(request.session, kind, task, scope, current=current)
        if reviewer
        else nav.nav_for_reader(kind, task, scope),
        selected=(focus.draft.decision if focus.draft else ""),
        edited=(focus.draft.edited_text if focus.draft and focus.draft.edited_text else item.text),
        note=(focus.draft.note if focus.draft else ""),
    )
    return context


def render_focus(request, kind, task, scope, *, current: bool, status: int = 200, partial=None, **extra):
    whole = not (partial if partial is not None else request.htmx)
    context = focus_context(request, kind, task, scope, current=current, **extra)
    if whole and kind == Kind.TASK_LABEL:  # the labels retrain the local classifier: its accuracy beside them
        context["classifier"] = classifier_versions()
    return render(request, "review/focus.html" if whole else PANEL, context, status=status)


@role_required(Role.VIEWER)
def queue(request, kind: str):
    """The focus view: a reviewer's claimed task (the same one again on reload), a reader's first waiting
    task, or the empty state."""
    check_kind(kind)
    scope, _ = nav.scope_from(request.GET)
    if has_role(request.user, Role.REVIEWER):
        return render_focus(request, kind, claim_for(request, kind, scope), scope, current=True)
    return render_focus(request, kind, nav.first_waiting(kind, scope), scope, current=False)


@role_required(Role.VIEWER)
def task_detail(request, kind: str, pk: int):
    """One task in the focus layout (from the table, or walking back through the trail)."""
    check_kind(kind)
    scope, _ = nav.scope_from(request.GET)
    task = get_object_or_404(ReviewTask, pk=pk, kind=kind)
    return render_focus(request, kind, task, scope, current=False)


@role_required(Role.VIEWER)
def table(request, kind: str):
    check_kind(kind)
    form = QueueFilterForm(request.GET, kind=kind)
    scope, _ = nav.scope_from(request.GET)
    experiments, rounds = scope_choices(experiment_id=scope.experiment)
    context = {
        "kind": kind,
        "kind_label": Kind(kind).label,
        "form": form,
        "scope": scope,
        "experiments": experiments,
        "rounds": rounds,
        "vocabulary": task_vocabulary(),
        "buttons": nav.buttons(kind),
        "queue_url": scope.url("queue", kind),
        "counts": nav.scope_counts(kind, scope),
        "classifier": classifier_versions() if kind == Kind.TASK_LABEL and not request.htmx else None,
    }
    status = 200
    if form.is_valid():
        qs = queue_filter(kind=kind, **form.filters())
        page = task_page(qs, after=form.cleaned_data["after"], before=form.cleaned_data["before"])
        items = review_items(page.rows)
        voters = _voters([t.pk for t in page.rows])
        for item in items:
            item.extra["voters"] = voters.get(item.task.pk, [])
        params = request.GET.copy()
        for cursor in ("after", "before"):
            params.pop(cursor, None)
        context.update(
            page=page,
            items=items,
            query=params.urlencode(),
            next_cursor=f"{page.next_after[0]}.{page.next_after[1]}" if page.next_after else "",
            previous_cursor=f"{page.previous_before[0]}.{page.previous_before[1]}" if page.previous_before else "",
        )
    elif not request.htmx:
        status = 400
    template = "review/table.html#task-rows" if request.htmx else "review/table.html"
    return render(request, template, context, status=status)


def _voters(task_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    """task -> [(reviewer, decision)] of the votes that count, for a page of tasks in one query."""
    out: dict[int, list[tuple[str, str]]] = {}
    rows = (
        ReviewAssignment.objects.filter(task_id__in=task_ids, status=ReviewAssignment.Status.SUBMITTED)
        .order_by("task_id", "submitted_at", "pk")
        .values_list("task_id", "reviewer__username", "verdict__decision")
    )
    for task_id, name, decision in rows:
        out.setdefault(task_id, []).append((name, decision))
    return out
