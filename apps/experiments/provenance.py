"""Where an instruction came from, who or what judged it, and who approved it: one read for the
instruction's provenance page and its API.

A fixed number of queries whatever the number of answers, judgments and reviews (each list is one query
with its relations joined or prefetched); every list is capped at LIMIT rows, and says when it was cut.
"""

from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db.models import Prefetch, Q

from apps.datasets.models import Instruction
from apps.experiments.models import Lineage, PoolMember, Round, SeedSelection, SnapshotItem, TaskLabel
from apps.judging.models import Judgment, Response
from apps.reviews.models import ReviewTask, ReviewVerdict

LIMIT = 200


@dataclass
class Listing:
    """Up to LIMIT rows, and whether there were more."""

    rows: list
    more: bool = False

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)

    def __bool__(self):
        return bool(self.rows)


def _listing(qs, limit: int = LIMIT) -> Listing:
    rows = list(qs[: limit + 1])
    return Listing(rows[:limit], more=len(rows) > limit)


@dataclass
class SnapshotUse:
    """A round's frozen training set that holds the instruction, and as which examples."""

    item: SnapshotItem  # the first of its examples there (snapshot, round and experiment joined)
    kinds: list[str] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)


@dataclass
class Provenance:
    instruction: Instruction
    lineage: Lineage | None
    made_from_it: Listing
    answers: Listing
    judgments: Listing
    reviews: Listing
    task_labels: Listing
    pools: Listing
    seed_selections: Listing
    snapshots: list[SnapshotUse]
    snapshots_more: bool = False


def _review_subject(task: ReviewTask, names: dict[int, str]) -> str:
    return f"{names.get(task.subject_type_id, 'item')} #{task.subject_id}"


def instruction_provenance(*, instruction_id: int) -> Provenance:
    """Everything recorded about one instruction across experiments. Raises Instruction.DoesNotExist."""
    instruction = Instruction.objects.select_related(
        "dataset", "dataset__owner_experiment", "parent", "created_in_round__experiment"
    ).get(pk=instruction_id)
    lineage = (
        Lineage.objects.select_related("experiment", "round", "seed", "nearest", "call")
        .filter(instruction_id=instruction_id)
        .first()
    )
    made_from_it = _listing(
        Lineage.objects.filter(seed_id=instruction_id)
        .select_related("instruction", "experiment", "round")
        .order_by("instruction_id")
    )
    answers = _listing(
        Response.objects.filter(instruction_id=instruction_id)
        .select_related("endpoint", "round__experiment", "llm_call", "rewrites")
        .order_by("id")
    )
    judgments = _listing(
        Judgment.objects.filter(instruction_id=instruction_id)
        .select_related("round__experiment", "endpoint", "teacher_response", "student_response")
        .order_by("id")
    )
    task_labels = _listing(
        TaskLabel.objects.filter(instruction_id=instruction_id).select_related("experiment", "call").order_by("id")
    )
    pools = _listing(
        PoolMember.objects.filter(instruction_id=instruction_id)
        .select_related("experiment")
        .order_by("experiment_id", "pool", "joined_round")
    )
    seed_selections = _listing(
        SeedSelection.objects.filter(instruction_id=instruction_id).select_related("round__experiment").order_by("id")
    )
    items = _listing(
        SnapshotItem.objects.filter(instruction_id=instruction_id)
        .select_related("snapshot__round__experiment", "snapshot__approved_by", "snapshot__round__approved_by")
        .order_by("snapshot_id", "position"),
        limit=LIMIT * 3,
    )
    snapshots: dict[int, SnapshotUse] = {}
    for item in items:
        use = snapshots.setdefault(item.snapshot_id, SnapshotUse(item))
        use.kinds.append(item.kind)
        use.positions.append(item.position)
    reviews = _reviews(
        instruction_id=instruction_id,
        judgment_ids=[j.pk for j in judgments],
        response_ids=[r.pk for r in answers],
        label_ids=[t.pk for t in task_labels],
        experiment_ids={
            *(r.round.experiment_id for r in answers if r.round_id),
            *(j.round.experiment_id for j in judgments),
            *(t.experiment_id for t in task_labels),
            *([lineage.experiment_id] if lineage else []),
        },
    )
    return Provenance(
        instruction=instruction,
        lineage=lineage,
        made_from_it=made_from_it,
        answers=answers,
        judgments=judgments,
        reviews=reviews,
        task_labels=task_labels,
        pools=pools,
        seed_selections=seed_selections,
        snapshots=list(snapshots.values()),
        snapshots_more=items.more,
    )


def _reviews(
    *, instruction_id: int, judgment_ids: list[int], response_ids: list[int], label_ids: list[int], experiment_ids
) -> Listing:
    """Review tasks whose subject is the instruction itself (a generated instruction), one of its
    judgments (a hard/easy verdict), one of its answers (a rewrite, rationale or teacher answer) or one of
    its task labels, with every vote and the resolution. Tasks are found through the rounds of the
    experiments that touched the instruction, so the lookup runs on the tasks' (round, kind, subject)
    index rather than over every task."""
    if not experiment_ids:
        return Listing([])
    types = ContentType.objects.get_for_models(Instruction, Judgment, Response, TaskLabel)
    by_model = {
        Instruction: [instruction_id],
        Judgment: judgment_ids,
        Response: response_ids,
        TaskLabel: label_ids,
    }
    subjects = Q()
    for model, ids in by_model.items():
        if ids:
            subjects |= Q(subject_type=types[model], subject_id__in=ids)
    rounds = Round.objects.filter(experiment_id__in=experiment_ids).values("pk")
    qs = (
        ReviewTask.objects.filter(subjects, round__in=rounds, kind__in=ReviewTask.Kind.values)
        .select_related("round__experiment", "resolved_by")
        .prefetch_related(
            Prefetch("verdicts", queryset=ReviewVerdict.objects.select_related("reviewer").order_by("id"))
        )
        .order_by("round_id", "kind", "id")
    )
    listing = _listing(qs)
    names = {ct.pk: model._meta.verbose_name for model, ct in types.items()}
    for task in listing:
        task.subject_label = _review_subject(task, names)
    return listing
