"""What the focus view needs besides its item: the queue's scope, the reviewer's trail (the tasks he decided
or skipped in this queue, for "previous"), the tasks he skipped, the decision buttons of a kind with their
shortcut keys, and the neighbours of a task for someone who only reads."""

from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Q
from django.urls import reverse

from apps.console.review_forms import ScopeForm
from apps.console.review_queries import queue_counts, scoped
from apps.reviews.kinds import ALLOWED, Decision, Kind
from apps.reviews.models import ReviewTask

TRAIL_LENGTH = 50
MAX_SKIPS = 500

# The words on each kind's buttons, in the order of ALLOWED (keys 1, 2, 3 follow that order).
LABELS = {
    Kind.VERDICT: {Decision.ACCEPT: "Confirm", Decision.FLIP: "Flip", Decision.INVALID: "Mark invalid"},
    Kind.TASK_LABEL: {Decision.ACCEPT: "Keep the category", Decision.EDIT: "Change the category"},
    Kind.INVALID_REPLY: {Decision.RETRY: "Retry the call", Decision.REJECT: "Drop it"},
}
DEFAULT_LABELS = {Decision.ACCEPT: "Approve", Decision.REJECT: "Reject", Decision.EDIT: "Save my edit"}
LETTERS = {Decision.ACCEPT: "a", Decision.REJECT: "r", Decision.EDIT: "e", Decision.FLIP: "f"}


@dataclass(frozen=True)
class Button:
    decision: str
    label: str
    keys: tuple[str, ...]  # what the help overlay and the button show; review.js reads data-keys

    @property
    def data_keys(self) -> str:
        return " ".join(self.keys)


def buttons(kind: str, *, verdict: str = "") -> list[Button]:
    """The decision buttons of a kind: 1, 2, 3 in order, and the letter of the decision where it has one.
    A verdict's buttons name what the call becomes (confirm hard, flip to easy)."""
    out = []
    for n, decision in enumerate(ALLOWED[kind], start=1):
        label = LABELS.get(kind, DEFAULT_LABELS).get(decision) or DEFAULT_LABELS.get(decision, decision)
        if kind == Kind.VERDICT and verdict in ("hard", "easy"):
            other = "easy" if verdict == "hard" else "hard"
            label = {Decision.ACCEPT: f"Confirm {verdict}", Decision.FLIP: f"Flip to {other}"}.get(decision, label)
        keys = (str(n), LETTERS[decision]) if decision in LETTERS else (str(n),)
        out.append(Button(decision, label, keys))
    return out


# --- scope ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    experiment: int | None = None
    round: int | None = None

    @property
    def round_ids(self) -> list[int] | None:
        return None if self.round is None else [self.round]

    @property
    def query(self) -> str:
        return urlencode({k: v for k, v in (("experiment", self.experiment), ("round", self.round)) if v})

    def url(self, name: str, *args) -> str:
        url = reverse(f"reviews:{name}", args=args)
        return f"{url}?{self.query}" if self.query else url


def scope_from(data) -> tuple[Scope, dict]:
    """The scope in a GET or POST, and the form's errors (an invalid value is left out)."""
    form = ScopeForm(data)
    if form.is_valid():
        return Scope(form.cleaned_data.get("experiment"), form.cleaned_data.get("round")), {}
    clean = {name: form.cleaned_data.get(name) for name in ("experiment", "round") if name not in form.errors}
    return Scope(clean.get("experiment"), clean.get("round")), form.errors


def scope_counts(kind: str, scope: Scope) -> dict:
    return queue_counts(kind=kind, experiment_id=scope.experiment, round_id=scope.round)


# --- the reviewer's trail and skips (in his session, per queue) ---------------------------------------------
def _key(kind: str, what: str) -> str:
    return f"review:{kind}:{what}"


def trail(session, kind: str) -> list[int]:
    return [int(pk) for pk in session.get(_key(kind, "trail"), [])]


def trail_push(session, kind: str, task_id: int) -> None:
    ids = [pk for pk in trail(session, kind) if pk != task_id] + [task_id]
    session[_key(kind, "trail")] = ids[-TRAIL_LENGTH:]


def skipped(session, kind: str) -> list[int]:
    return [int(pk) for pk in session.get(_key(kind, "skipped"), [])]


def skip_add(session, kind: str, task_id: int) -> None:
    ids = [pk for pk in skipped(session, kind) if pk != task_id] + [task_id]
    session[_key(kind, "skipped")] = ids[-MAX_SKIPS:]


def skips_clear(session, kind: str) -> None:
    session.pop(_key(kind, "skipped"), None)


# --- previous and next ---------------------------------------------------------------------------------------
@dataclass
class Nav:
    previous_url: str = ""
    next_url: str = ""  # a link; empty when "next" is the skip button (the reviewer's current task)
    skip: bool = False
    position: str = ""


def nav_for_reviewer(session, kind: str, task: ReviewTask, scope: Scope, *, current: bool) -> Nav:
    """Previous walks back through the tasks he decided or skipped here; next walks forward again and, on
    the task he holds now, skips it."""
    ids = trail(session, kind)
    if current or task.pk not in ids:
        previous = ids[-1] if ids else None
        return Nav(
            previous_url=scope.url("task", kind, previous) if previous else "",
            next_url="" if current else scope.url("queue", kind),
            skip=current,
        )
    at = ids.index(task.pk)
    return Nav(
        previous_url=scope.url("task", kind, ids[at - 1]) if at > 0 else "",
        next_url=scope.url("task", kind, ids[at + 1]) if at + 1 < len(ids) else scope.url("queue", kind),
        position=f"{len(ids) - at} back",
    )


def nav_for_reader(kind: str, task: ReviewTask, scope: Scope) -> Nav:
    """Someone who only reads walks the queue's waiting tasks in its order (priority, then id)."""
    waiting = scoped(kind=kind, experiment_id=scope.experiment, round_id=scope.round).exclude(
        status=ReviewTask.Status.DONE
    )
    after = Q(priority__lt=task.priority) | Q(priority=task.priority, pk__gt=task.pk)
    before = Q(priority__gt=task.priority) | Q(priority=task.priority, pk__lt=task.pk)
    following = waiting.filter(after).order_by("-priority", "pk").values_list("pk", flat=True).first()
    preceding = waiting.filter(before).order_by("priority", "-pk").values_list("pk", flat=True).first()
    return Nav(
        previous_url=scope.url("task", kind, preceding) if preceding else "",
        next_url=scope.url("task", kind, following) if following else "",
    )


def first_waiting(kind: str, scope: Scope) -> ReviewTask | None:
    """The queue's first task not done, in its order: what a reader's focus view opens on."""
    qs = scoped(kind=kind, experiment_id=scope.experiment, round_id=scope.round)
    return qs.exclude(status=ReviewTask.Status.DONE).order_by("-priority", "pk").first()
