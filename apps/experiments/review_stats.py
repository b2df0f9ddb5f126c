"""How often reviewers overturn the judge: per round, the decided verdict tasks (hard/easy calls of the
discriminate stage) by task category, counted in the database. A flip or a mark of invalid overturns the
judge's call; an accept confirms it. Tasks auto-approve accepted are left out: nobody looked at them."""

from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db.models import Case, Count, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce, NullIf

from apps.experiments.models import Round, TaskLabel
from apps.experiments.stages.review_gate import AUTO_REVIEWER
from apps.judging.models import Judgment
from apps.reviews.kinds import Decision, Kind
from apps.reviews.models import ReviewTask

UNLABELLED = "(no category)"


@dataclass(frozen=True)
class JudgeOverturns:
    category: str
    reviewed: int
    confirmed: int
    flipped: int
    invalid: int

    @property
    def overturned(self) -> int:
        return self.flipped + self.invalid

    @property
    def rate(self) -> float | None:
        """Overturned share of the reviewed calls, 0..1 (None with none reviewed)."""
        return self.overturned / self.reviewed if self.reviewed else None


def judge_overturns(*, round_id: int) -> list[JudgeOverturns]:
    """One row per task category of the round's reviewed verdicts, most reviewed first, then one named
    "all" with the round's totals. An instruction's category is the experiment's label that counts
    (reviewer > LLM > local > imported), else the imported one."""
    round_ = Round.objects.only("experiment_id").get(pk=round_id)
    tasks = ReviewTask.objects.filter(
        round_id=round_id,
        kind=Kind.VERDICT,
        status=ReviewTask.Status.DONE,
        subject_type=ContentType.objects.get_for_model(Judgment),
    ).exclude(resolved_by__username=AUTO_REVIEWER)
    rank = Case(
        *(When(source=source, then=Value(n)) for n, source in enumerate(TaskLabel.PRIORITY)),
        output_field=IntegerField(),
    )
    label = (
        TaskLabel.objects.filter(experiment_id=round_.experiment_id, instruction_id=OuterRef("instruction_id"))
        .order_by(rank)
        .values("category")[:1]
    )
    rows = (
        Judgment.objects.filter(round_id=round_id, pk__in=tasks.values("subject_id"))
        .annotate(
            decision=Subquery(tasks.filter(subject_id=OuterRef("pk")).values("decision")[:1]),
            category=Coalesce(Subquery(label), NullIf("instruction__task_category", Value("")), Value(UNLABELLED)),
        )
        .order_by()
        .values("category")
        .annotate(
            reviewed=Count("pk"),
            confirmed=Count("pk", filter=Q(decision=Decision.ACCEPT)),
            flipped=Count("pk", filter=Q(decision=Decision.FLIP)),
            invalid=Count("pk", filter=Q(decision=Decision.INVALID)),
        )
    )
    out = [JudgeOverturns(**row) for row in rows]
    out.sort(key=lambda r: (-r.reviewed, r.category))
    if out:
        out.append(
            JudgeOverturns(
                "all",
                sum(r.reviewed for r in out),
                sum(r.confirmed for r in out),
                sum(r.flipped for r in out),
                sum(r.invalid for r in out),
            )
        )
    return out
