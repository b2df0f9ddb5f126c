"""Writes for the review queues: votes, bulk votes, operators' resolutions, drafts, and the engine's
bulk accept. Claiming and releasing live in apps.reviews.claiming.

A task is decided by `required_reviews` votes (one per reviewer; a reviewer's newer verdict replaces his
vote until the task is done). Agreeing votes make it done with their decision as its resolution;
disagreeing ones put it in conflict, which an operator settles with `review_resolve`. Tasks that become
done are announced with `review_tasks_done` once the transaction commits.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from apps.core.roles import Role, require_role
from apps.reviews.claiming import holds, live, lock_task, refresh_status
from apps.reviews.kinds import ALLOWED, Decision, ReviewError, check_kind, clean_decision
from apps.reviews.models import ReviewAssignment, ReviewDraft, ReviewTask, ReviewVerdict
from apps.reviews.signals import review_tasks_done

A = ReviewAssignment.Status
S = ReviewTask.Status
MAX_BULK = 1000
MAX_NOTE = 10_000


@dataclass
class BulkOutcome:
    """What a bulk decision did: votes recorded, tasks that became done, and each skipped task's reason."""

    decided: int = 0
    done: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _announce(tasks: Sequence[ReviewTask]) -> None:
    if not tasks:
        return
    task_ids = sorted(t.pk for t in tasks)
    round_ids = sorted({t.round_id for t in tasks if t.round_id is not None})
    kinds = sorted({t.kind for t in tasks})
    transaction.on_commit(
        lambda: review_tasks_done.send(sender=ReviewTask, task_ids=task_ids, round_ids=round_ids, kinds=kinds)
    )


def _note(note: str) -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise ReviewError(f"A note is at most {MAX_NOTE} characters, this one has {len(note)}.")
    return note


def _resolve(task: ReviewTask, *, decision: str, edited_text: str, note: str, by, now) -> None:
    task.status, task.decision, task.edited_text, task.note = S.DONE, decision, edited_text, note
    task.resolved_at, task.resolved_by = now, by
    task.save(update_fields=["status", "decision", "edited_text", "note", "resolved_at", "resolved_by", "updated_at"])
    # Whoever still held a claim on it has nothing left to do there.
    ReviewAssignment.objects.filter(task=task, status=A.ACTIVE).update(status=A.RELEASED, lease_expires_at=None)


def _settle(task: ReviewTask, *, by, now) -> bool:
    """Look at the task's votes after one changed: done (True) when enough agree, conflict when enough
    disagree, else open or claimed."""
    votes = list(
        ReviewAssignment.objects.filter(task=task, status=A.SUBMITTED)
        .select_related("verdict")
        .order_by("submitted_at", "pk")
    )
    if len(votes) < task.required_reviews:
        if task.status == S.CONFLICT:  # a vote can only leave a conflict by agreeing; never by vanishing
            return False
        refresh_status(task, now)
        return False
    answers = {(v.verdict.decision, v.verdict.edited_text) for v in votes}
    if len(answers) == 1:
        decision, text = answers.pop()
        notes = list(dict.fromkeys(v.verdict.note for v in votes if v.verdict.note))
        _resolve(task, decision=decision, edited_text=text, note="\n".join(notes), by=by, now=now)
        return True
    if task.status != S.CONFLICT:
        task.status = S.CONFLICT
        task.save(update_fields=["status", "updated_at"])
    return False


def _vote(task: ReviewTask, reviewer, decision: str, edited_text: str, note: str, now) -> bool:
    """Record the reviewer's vote on the locked task; True when it made the task done."""
    where = f"review task #{task.pk}"
    if task.status == S.DONE:
        raise ReviewError(f"The {where} is already decided ({task.get_decision_display()}).")
    decision, text = clean_decision(task.kind, decision, edited_text, where=where)
    note = _note(note)
    mine = ReviewAssignment.objects.filter(task=task, reviewer=reviewer).first()
    if not holds(mine, now):
        if task.status == S.CONFLICT:
            raise ReviewError(f"The {where} waits for an operator: its reviewers disagree.")
        others = ReviewAssignment.objects.filter(task=task).filter(live(now)).exclude(reviewer=reviewer).count()
        if others >= task.required_reviews:
            raise ReviewError(
                f"The {where} is held by other reviewers ({others} of {task.required_reviews}); claim the next one."
            )
    verdict = ReviewVerdict.objects.create(task=task, reviewer=reviewer, decision=decision, edited_text=text, note=note)
    if mine is None:
        mine = ReviewAssignment(task=task, reviewer=reviewer)
    mine.status, mine.verdict, mine.lease_expires_at, mine.submitted_at = A.SUBMITTED, verdict, None, now
    mine.save()
    ReviewDraft.objects.filter(task=task, reviewer=reviewer).delete()
    return _settle(task, by=reviewer, now=now)


def review_decide(*, reviewer, task_id: int, decision: str, edited_text: str = "", note: str = "") -> ReviewTask:
    """The reviewer's vote on a task he holds, or on one with a free slot (taken there and then). A second
    vote by him replaces his first while the task is not done. Returns the task as it now stands (done
    with its resolution, in conflict, or still waiting for other reviewers)."""
    require_role(reviewer, Role.REVIEWER)
    with transaction.atomic():
        task = lock_task(task_id)
        if _vote(task, reviewer, decision, edited_text, note, timezone.now()):
            _announce([task])
        return task


def review_bulk_decide(
    *, reviewer, task_ids: Iterable[int], decision: str, edited_text: str = "", note: str = ""
) -> BulkOutcome:
    """One decision on many tasks (the table view), in one transaction with the rows locked in id order.
    A task the decision cannot apply to (decided, held by others, another kind's decision) is skipped
    with its reason; the others are voted on."""
    require_role(reviewer, Role.REVIEWER)
    ids = sorted({int(pk) for pk in task_ids})
    if len(ids) > MAX_BULK:
        raise ReviewError(f"A bulk decision takes at most {MAX_BULK} tasks, got {len(ids)}.")
    outcome, done = BulkOutcome(), []
    with transaction.atomic():
        tasks = {t.pk: t for t in ReviewTask.objects.filter(pk__in=ids).order_by("pk").select_for_update()}
        now = timezone.now()
        for pk in ids:
            task = tasks.get(pk)
            if task is None:
                outcome.skipped.append((pk, f"There is no review task #{pk}."))
                continue
            try:  # every refusal comes before the vote writes anything
                finished = _vote(task, reviewer, decision, edited_text, note, now)
            except ReviewError as exc:
                outcome.skipped.append((pk, str(exc)))
                continue
            outcome.decided += 1
            if finished:
                done.append(task)
        outcome.done = len(done)
        _announce(done)
    return outcome


def review_resolve(*, by, task_id: int, decision: str, edited_text: str = "", note: str = "") -> ReviewTask:
    """An operator settles a task whose reviewers disagree; his decision is its resolution."""
    require_role(by, Role.OPERATOR)
    with transaction.atomic():
        task = lock_task(task_id)
        if task.status != S.CONFLICT:
            raise ReviewError(f"Review task #{task.pk} is {task.get_status_display()}; only a conflict is resolved.")
        decision, text = clean_decision(task.kind, decision, edited_text, where=f"review task #{task.pk}")
        _resolve(task, decision=decision, edited_text=text, note=_note(note), by=by, now=timezone.now())
        _announce([task])
        return task


def review_tasks_auto_accept(*, task_ids: Iterable[int], reviewer, note: str = "") -> int:
    """Accept every task of `task_ids` not yet done, under `reviewer`'s name (auto-approve: a verdict
    each, and the resolution). Kinds without an accept (unparsable replies) are left as they are."""
    ids = sorted({int(pk) for pk in task_ids})
    accepting = [kind for kind, allowed in ALLOWED.items() if Decision.ACCEPT in allowed]
    accepted = []
    now = timezone.now()
    for start in range(0, len(ids), MAX_BULK):
        chunk = ids[start : start + MAX_BULK]
        tasks = list(
            ReviewTask.objects.filter(pk__in=chunk, kind__in=accepting)
            .exclude(status=S.DONE)
            .order_by("pk")
            .select_for_update()
        )
        if not tasks:
            continue
        pks = [t.pk for t in tasks]
        ReviewVerdict.objects.bulk_create(
            [ReviewVerdict(task=t, reviewer=reviewer, decision=Decision.ACCEPT, note=note) for t in tasks],
            batch_size=MAX_BULK,
        )
        ReviewTask.objects.filter(pk__in=pks).update(
            status=S.DONE, decision=Decision.ACCEPT, edited_text="", note=note, resolved_at=now,
            resolved_by=reviewer, updated_at=now,
        )  # fmt: skip
        ReviewAssignment.objects.filter(task_id__in=pks, status=A.ACTIVE).update(
            status=A.RELEASED, lease_expires_at=None, updated_at=now
        )
        accepted += tasks
    _announce(accepted)
    return len(accepted)


def review_draft_save(
    *, reviewer, task_id: int, decision: str = "", edited_text: str = "", note: str = ""
) -> ReviewDraft:
    """Keep the reviewer's unsent decision on a task (one draft per reviewer and task, replaced)."""
    require_role(reviewer, Role.REVIEWER)
    with transaction.atomic():
        task = lock_task(task_id)
        if task.status == S.DONE:
            raise ReviewError(f"Review task #{task.pk} is already decided; there is nothing to draft.")
        check_kind(task.kind)
        if decision and decision not in ALLOWED[task.kind]:
            raise ReviewError(
                f"Decision {decision!r} is not allowed on review task #{task.pk}: "
                f"a {task.get_kind_display()} takes {', '.join(ALLOWED[task.kind])}."
            )
        draft, _ = ReviewDraft.objects.update_or_create(
            task=task,
            reviewer=reviewer,
            defaults={"decision": decision, "edited_text": edited_text or "", "note": _note(note)},
        )
        return draft


def review_draft_discard(*, reviewer, task_id: int) -> bool:
    require_role(reviewer, Role.REVIEWER)
    deleted, _ = ReviewDraft.objects.filter(task_id=task_id, reviewer=reviewer).delete()
    return bool(deleted)
