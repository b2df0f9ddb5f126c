"""Reads for the queue pages that stay fast on large tables: the overview's counts (one grouped count),
the table's filters (each one an indexed subquery on the subject's table) and keyset pages by
(priority, id) in the queues' own order, never OFFSET."""

from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from apps.datasets.models import Instruction
from apps.datasets.selectors import instruction_search
from apps.experiments.models import Experiment, Lineage, Round, TaskLabel
from apps.experiments.review_stats import judge_overturns
from apps.judging.models import Judgment, Response
from apps.llm.models import LLMCall, LLMCallUse
from apps.reviews.agreement import pair_agreement, queue_agreement, resolution_agreement
from apps.reviews.claiming import queue_scope
from apps.reviews.kinds import ALLOWED, Kind
from apps.reviews.models import ReviewAssignment, ReviewTask

PAGE_SIZE = 50
STATUSES = [s for s, _ in ReviewTask.Status.choices]
# The subject's table of each kind (unparsable replies have two: a use in a round, or a bare call) and the
# path from it to the instruction it is about.
SUBJECTS = {
    Kind.VERDICT: (Judgment, "instruction"),
    Kind.REWRITE: (Response, "instruction"),
    Kind.RATIONALE: (Response, "instruction"),
    Kind.ANSWER: (Response, "instruction"),
    Kind.GENERATED: (Instruction, ""),
    Kind.TASK_LABEL: (TaskLabel, "instruction"),
}


def scoped(*, kind: str, experiment_id: int | None = None, round_id: int | None = None) -> QuerySet[ReviewTask]:
    return queue_scope(
        ReviewTask.objects.all(),
        kind=kind,
        round_ids=None if round_id is None else [round_id],
        experiment_id=experiment_id,
    )


COUNT_CAP = 1_000


@dataclass(frozen=True)
class Tally:
    """A count read up to a cap: shown as "10,000+" past it."""

    n: int
    capped: bool = False

    def __bool__(self) -> bool:
        return self.n > 0

    def __str__(self) -> str:
        return f"{self.n:,}+" if self.capped else f"{self.n:,}"


def queue_counts(
    *, kind: str, experiment_id: int | None = None, round_id: int | None = None, cap: int = COUNT_CAP
) -> dict[str, Tally]:
    """A queue's tasks by status for the focus and table pages, each counted up to `cap`: one bounded
    read per status (an index range on the queue's (round, kind, status) index in a round), so the line
    costs the same at a million tasks as at a thousand; exact below the cap, where a gate nears zero."""
    qs = scoped(kind=kind, experiment_id=experiment_id, round_id=round_id).order_by()
    out = {}
    for status in STATUSES:
        n = qs.filter(status=status)[: cap + 1].count()
        out[status] = Tally(min(n, cap), n > cap)
    return out


def _instruction_filter(path: str, **lookups) -> Q:
    prefix = f"{path}__" if path else ""
    return Q(**{f"{prefix}{name}": value for name, value in lookups.items()})


def _category(kind: str, model, path: str, category: str) -> QuerySet:
    """Subjects whose instruction has `category`: its own, or a label of an experiment (any source)."""
    if kind == Kind.TASK_LABEL:
        return model.objects.filter(category=category)
    pk = f"{path}_id" if path else "pk"
    labelled = TaskLabel.objects.filter(instruction_id=OuterRef(pk), category=category)
    return model.objects.filter(_instruction_filter(path, task_category=category) | Q(Exists(labelled)))


def _search(kind: str, q: str) -> Q:
    """Tasks whose instruction (text or input) holds every word of `q` at the start of a word: the dataset
    browser's search (`instruction_search`), which PostgreSQL answers from its full-text GIN index.
    Unparsable replies are searched in the reply and the error (a short list: the calls that failed)."""
    if kind == Kind.INVALID_REPLY:
        failed = LLMCall.objects.filter(status=LLMCall.Status.INVALID)
        calls = failed.filter(Q(reply__icontains=q) | Q(error__icontains=q))
        uses = LLMCallUse.objects.filter(call__in=calls.values("pk"))
        return Q(subject_type=ContentType.objects.get_for_model(LLMCallUse), subject_id__in=uses.values("pk")) | Q(
            subject_type=ContentType.objects.get_for_model(LLMCall), subject_id__in=calls.values("pk")
        )
    model, path = SUBJECTS[kind]
    found = instruction_search(Instruction.objects.all(), q).values("pk")
    subjects = found if not path else model.objects.filter(**{f"{path}__in": found}).values("pk")
    return Q(subject_id__in=_found_first(subjects))


def _found_first(subjects: QuerySet):
    """On PostgreSQL, the matching subjects as a MATERIALIZED CTE: the planner then reads the full-text
    index first and the tasks by subject id, instead of walking the queue's order index and testing every
    task's instruction against the words (1-2 s for a common word at a million tasks; about 0.1 s this way,
    bench/review_queue.py). Elsewhere the plain subquery."""
    if connection.vendor != "postgresql":
        return subjects
    sql, params = subjects.query.sql_with_params()
    # Django's own SQL with its parameters kept apart, wrapped in a CTE; no user text enters the string.
    return RawSQL(f"WITH found AS MATERIALIZED ({sql}) SELECT * FROM found", params)  # noqa: S608, S611


def queue_filter(
    *,
    kind: str,
    experiment_id: int | None = None,
    round_id: int | None = None,
    status: str = "",
    category: str = "",
    gap_min: float | None = None,
    gap_max: float | None = None,
    contested: bool | None = None,
    origin: str = "",
    reviewer: str = "",
    q: str = "",
) -> QuerySet[ReviewTask]:
    """A queue's tasks under the table's filters. Filters a kind's subjects do not have are ignored."""
    qs = scoped(kind=kind, experiment_id=experiment_id, round_id=round_id)
    if status:
        qs = qs.filter(status=status)
    if reviewer:
        voted = ReviewAssignment.objects.filter(
            task=OuterRef("pk"), reviewer__username=reviewer, status=ReviewAssignment.Status.SUBMITTED
        )
        qs = qs.filter(Exists(voted))
    if (q := (q or "").strip()) != "":
        qs = qs.filter(_search(kind, q))
    if kind not in SUBJECTS:
        return qs
    model, path = SUBJECTS[kind]
    subjects = []
    if category:
        subjects.append(_category(kind, model, path, category))
    if kind == Kind.VERDICT:
        judgments = Judgment.objects.all()
        if gap_min is not None:
            judgments = judgments.filter(gap__gte=gap_min)
        if gap_max is not None:
            judgments = judgments.filter(gap__lte=gap_max)
        if contested is not None:
            judgments = judgments.filter(contested=contested)
        if origin:
            judgments = judgments.filter(verdict=origin)
        if judgments.query.where:
            subjects.append(judgments)
    if kind == Kind.GENERATED and origin:
        subjects.append(Lineage.objects.filter(origin=origin).values("instruction_id"))
    for subject in subjects:
        values = subject if subject.query.values_select else subject.values("pk")
        qs = qs.filter(subject_id__in=values)
    return qs


@dataclass
class TaskPage:
    """One page of a keyset walk in queue order (priority high to low, then id), with the cursors of the
    pages either side (None where there is none)."""

    rows: list[ReviewTask]
    next_after: tuple[int, int] | None = None
    previous_before: tuple[int, int] | None = None


def _following(qs: QuerySet[ReviewTask], cursor: tuple[int, int] | None, limit: int) -> list[ReviewTask]:
    """Up to `limit` tasks after `cursor` in queue order (priority high to low, then id). Priorities are
    a few small numbers, so the walk is two index ranges instead of an OR the planner cannot range over:
    the cursor's priority from its id on, then the lower priorities from their start."""
    if cursor is None:
        return list(qs.order_by("-priority", "pk")[:limit])
    priority, pk = cursor
    rows = list(qs.filter(priority=priority, pk__gt=pk).order_by("pk")[:limit])
    if len(rows) < limit:
        rows += list(qs.filter(priority__lt=priority).order_by("-priority", "pk")[: limit - len(rows)])
    return rows


def _preceding(qs: QuerySet[ReviewTask], cursor: tuple[int, int], limit: int) -> list[ReviewTask]:
    """Up to `limit` tasks before `cursor`, nearest first (the same two ranges, backwards)."""
    priority, pk = cursor
    rows = list(qs.filter(priority=priority, pk__lt=pk).order_by("-pk")[:limit])
    if len(rows) < limit:
        rows += list(qs.filter(priority__gt=priority).order_by("priority", "-pk")[: limit - len(rows)])
    return rows


def _cursor(task: ReviewTask) -> tuple[int, int]:
    return task.priority, task.pk


def task_page(
    qs: QuerySet[ReviewTask],
    *,
    after: tuple[int, int] | None = None,
    before: tuple[int, int] | None = None,
    size: int = PAGE_SIZE,
) -> TaskPage:
    """`size` tasks after the cursor (forwards) or before it (backwards), shown in queue order: a few
    index ranges for the page and one short look for a row in the other direction, whatever the page's
    number (never OFFSET)."""
    if after is not None and before is not None:
        raise ValueError("A page is either after a task or before one, not both.")
    probe = qs.only("pk", "priority")
    qs = qs.select_related("subject_type")
    if before is None:
        rows = _following(qs, after, size + 1)
        more, rows = len(rows) > size, rows[:size]
        page = TaskPage(rows, next_after=_cursor(rows[-1]) if more else None)
        if after and rows and _preceding(probe, _cursor(rows[0]), 1):
            page.previous_before = _cursor(rows[0])
        return page
    rows = _preceding(qs, before, size + 1)
    more, rows = len(rows) > size, rows[:size][::-1]
    page = TaskPage(rows, previous_before=_cursor(rows[0]) if more else None)
    if rows and _following(probe, _cursor(rows[-1]), 1):
        page.next_after = _cursor(rows[-1])
    return page


# --- overview ---------------------------------------------------------------------------------------------
@dataclass
class QueueCard:
    kind: str
    label: str
    counts: dict[str, int]
    agreement: object | None = None
    pairs: list = field(default_factory=list)  # Cohen's kappa per reviewer pair (a round's cards only)
    reviewers: list = field(default_factory=list)  # each reviewer against the resolutions (same)

    @property
    def waiting(self) -> int:
        return self.counts["open"] + self.counts["claimed"] + self.counts["conflict"]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def queue_cards(*, experiment_id: int | None = None, round_id: int | None = None) -> list[QueueCard]:
    """One card per kind: its tasks by status in one grouped count, and the reviewers' agreement (Cohen's
    kappa and percent) where some task has two votes; for one round also per reviewer pair and per
    reviewer against the resolutions."""
    qs = ReviewTask.objects.all()
    if round_id is not None:
        qs = qs.filter(round_id=round_id)
    if experiment_id is not None:
        qs = qs.filter(round__experiment_id=experiment_id)
    counts = {kind: dict.fromkeys(STATUSES, 0) for kind in ALLOWED}
    for kind, status, n in qs.order_by().values_list("kind", "status").annotate(n=Count("pk")):
        if kind in counts:
            counts[kind][status] = n
    round_ids = _round_ids(experiment_id=experiment_id, round_id=round_id)
    cards = []
    for kind in ALLOWED:
        card = QueueCard(kind, Kind(kind).label, counts[kind])
        if card.total:
            card.agreement = queue_agreement(kind=kind, round_ids=round_ids)
        if card.total and round_id is not None:  # per reviewer: bounded by one round's votes
            card.pairs = pair_agreement(kind=kind, round_ids=round_ids)
            card.reviewers = resolution_agreement(kind=kind, round_ids=round_ids)
        cards.append(card)
    return cards


def _round_ids(*, experiment_id: int | None, round_id: int | None) -> list[int] | None:
    if round_id is not None:
        return [round_id]
    if experiment_id is not None:
        return list(Round.objects.filter(experiment_id=experiment_id).values_list("pk", flat=True))
    return None


@dataclass
class RoundOverturns:
    round: Round
    rows: list


OVERTURN_ROUNDS = 5


def judge_agreement(*, experiment_id: int | None = None, round_id: int | None = None) -> list[RoundOverturns]:
    """How often reviewers overturned the judge, by category, for the round chosen, the experiment's rounds,
    or the latest rounds with decided verdict tasks (at most OVERTURN_ROUNDS)."""
    rounds = Round.objects.select_related("experiment")
    if round_id is not None:
        rounds = rounds.filter(pk=round_id)
    elif experiment_id is not None:
        rounds = rounds.filter(experiment_id=experiment_id)
    else:
        decided = ReviewTask.objects.filter(kind=Kind.VERDICT, status=ReviewTask.Status.DONE, round=OuterRef("pk"))
        rounds = rounds.filter(Exists(decided))
    out = []
    for round_ in rounds.order_by("-pk")[:OVERTURN_ROUNDS]:
        rows = judge_overturns(round_id=round_.pk)
        if rows:
            out.append(RoundOverturns(round_, rows))
    return out


def scope_choices(*, experiment_id: int | None) -> tuple[list[Experiment], list[Round]]:
    """Experiments (newest first, a bounded list) and the chosen experiment's rounds, for the filters."""
    experiments = list(Experiment.objects.order_by("-pk").only("pk", "name")[:200])
    rounds = []
    if experiment_id is not None:
        rounds = list(Round.objects.filter(experiment_id=experiment_id).order_by("index").only("pk", "index"))
    return experiments, rounds
