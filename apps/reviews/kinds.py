"""The review vocabulary: the decisions a person can take, and which ones each queue kind allows.

One table (`ALLOWED`) says what a reviewer may decide on each kind of task; the services check every vote,
draft and resolution against it, so a queue page cannot record a decision its consumers do not read.
"""

from django.db import models

from apps.core.errors import RetortError
from workers.algorithms.task_vocabulary import TASK_CATEGORIES, UnknownTaskLabel, to_task_category


class Kind(models.TextChoices):
    VERDICT = "verdict", "hard/easy verdict"
    REWRITE = "rewrite", "style rewrite"
    GENERATED = "generated", "generated instruction"
    RATIONALE = "rationale", "rationale"
    INVALID_REPLY = "invalid_reply", "unparsable reply"
    TASK_LABEL = "task_label", "task category"
    ANSWER = "answer", "teacher answer"


class Decision(models.TextChoices):
    ACCEPT = "accept", "accept"
    REJECT = "reject", "reject"
    EDIT = "edit", "accept with edits"
    FLIP = "flip", "flip the verdict"
    INVALID = "invalid", "mark invalid"
    RETRY = "retry", "send the call again"


D = Decision
ALLOWED: dict[str, tuple[str, ...]] = {
    Kind.VERDICT: (D.ACCEPT, D.FLIP, D.INVALID),
    Kind.REWRITE: (D.ACCEPT, D.REJECT, D.EDIT),
    Kind.GENERATED: (D.ACCEPT, D.REJECT, D.EDIT),
    Kind.RATIONALE: (D.ACCEPT, D.REJECT, D.EDIT),
    Kind.ANSWER: (D.ACCEPT, D.REJECT, D.EDIT),
    Kind.TASK_LABEL: (D.ACCEPT, D.EDIT),
    Kind.INVALID_REPLY: (D.RETRY, D.REJECT),
}
# Decisions after which the subject is left out of what trains (the consumers drop it).
DROPS = frozenset({D.REJECT, D.INVALID})


class ReviewError(RetortError):
    """A review action that cannot be taken, with the reason for the reviewer."""


def check_kind(kind: str) -> str:
    if kind not in ALLOWED:
        raise ReviewError(f"Unknown review kind {kind!r}; the queues are: {', '.join(ALLOWED)}.")
    return kind


def clean_decision(kind: str, decision: str, edited_text: str = "", *, where: str = "") -> tuple[str, str]:
    """(decision, edited text) as stored, or ReviewError naming the task (`where`) and what is allowed.

    An edit needs its text; a task label's edit must be a category of the task vocabulary and is stored
    under its canonical name. Other decisions keep no edited text."""
    check_kind(kind)
    where = f" on {where}" if where else ""
    allowed = ALLOWED[kind]
    if decision not in allowed:
        raise ReviewError(
            f"Decision {decision!r} is not allowed{where}: a {Kind(kind).label} takes {', '.join(allowed)}."
        )
    text = (edited_text or "").strip()
    if decision != D.EDIT:
        return decision, ""
    if not text:
        raise ReviewError(f"An edit{where} needs the edited text.")
    if kind == Kind.TASK_LABEL:
        try:
            text = to_task_category(text)
        except UnknownTaskLabel:
            raise ReviewError(
                f"{text[:80]!r}{where} is not a task category; choose one of: {', '.join(TASK_CATEGORIES)}."
            ) from None
    return decision, text
