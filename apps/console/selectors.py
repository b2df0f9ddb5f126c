"""Reads for the console's experiment pages: each combines rows of several apps (experiments, training,
reviews, llm), so it lives in the top layer. Every read is bounded: a page of experiments, one
experiment's rounds and stage runs, one grouped count of its review tasks."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, DecimalField, IntegerField, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

from apps.experiments import machine
from apps.experiments.models import Experiment, Round, StageRun
from apps.llm.selectors import experiment_spend
from apps.reviews.models import ReviewTask
from apps.training.models import TrainingJob

PAGE_SIZE = 50
# Stage runs that may still change: the console polls these.
STAGE_LIVE = frozenset(machine.STAGE_OPEN)


def planned_rounds(experiment: Experiment) -> int:
    return int((experiment.config.get("params") or {}).get("rounds") or 1)


def experiment_page_rows(*, before: int | None = None, limit: int = PAGE_SIZE) -> tuple[list[Experiment], int | None]:
    """Experiments newest first, `limit` at a time by id (keyset), each with `cost` (the paid LLM cost of
    its stage runs), `open_round` (the index of its first round not ended) and `last_round`."""
    stage_cost = (
        StageRun.objects.filter(round__experiment=OuterRef("pk"))
        .order_by()
        .values("round__experiment")
        .annotate(total=Sum("cost"))
        .values("total")
    )
    open_round = (
        Round.objects.filter(experiment=OuterRef("pk"), status__in=machine.ROUND_OPEN).order_by("index").values("index")
    )
    last_round = Round.objects.filter(experiment=OuterRef("pk")).order_by("-index").values("index")
    money = DecimalField(max_digits=14, decimal_places=8)
    rows = Experiment.objects.annotate(
        cost=Coalesce(Subquery(stage_cost, output_field=money), Decimal(0), output_field=money),
        open_round=Subquery(open_round[:1], output_field=IntegerField()),
        last_round=Subquery(last_round[:1], output_field=IntegerField()),
    )
    if before:
        rows = rows.filter(pk__lt=before)
    page = list(rows.order_by("-id")[: limit + 1])
    for experiment in page:
        experiment.rounds_planned = planned_rounds(experiment)
        experiment.round_shown = experiment.open_round or experiment.last_round or 0
    return page[:limit], (page[limit - 1].pk if len(page) > limit else None)


@dataclass
class Gate:
    stage: StageRun
    kind: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def undecided(self) -> int:
        return self.total - self.counts.get(ReviewTask.Status.DONE, 0)


@dataclass
class RoundView:
    round: Round
    stages: list[StageRun]
    gates: list[Gate] = field(default_factory=list)
    job: TrainingJob | None = None

    @property
    def live_stage(self) -> StageRun | None:
        """The stage the round is at: its first stage run that may still change."""
        return next((s for s in self.stages if s.status in STAGE_LIVE), None)


def _gate_counts(experiment_id: int) -> dict[tuple[int, str], dict[str, int]]:
    rows = (
        ReviewTask.objects.filter(round__experiment_id=experiment_id)
        .values("round_id", "kind", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts: dict[tuple[int, str], dict[str, int]] = {}
    for row in rows:
        counts.setdefault((row["round_id"], row["kind"]), {})[row["status"]] = row["n"]
    return counts


def experiment_rounds(*, experiment_id: int) -> list[RoundView]:
    """Every round of the experiment with its stage runs in order, its gates' task counts by status and
    its newest training job: four queries whatever the number of rounds."""
    rounds = list(Round.objects.filter(experiment_id=experiment_id).order_by("index"))
    stages: dict[int, list[StageRun]] = {r.pk: [] for r in rounds}
    for run in (
        StageRun.objects.filter(round__experiment_id=experiment_id)
        .select_related("round")
        .order_by("round__index", "position")
    ):
        stages[run.round_id].append(run)
    jobs: dict[int, TrainingJob] = {}
    for job in TrainingJob.objects.filter(round__experiment_id=experiment_id).order_by("id"):
        jobs[job.round_id] = job  # the newest wins
    counts = _gate_counts(experiment_id)
    views = []
    for round_ in rounds:
        gates = []
        for run in stages[round_.pk]:
            if run.kind == "review_gate":
                kind = run.params.get("review_kind", "")
                gates.append(Gate(stage=run, kind=kind, counts=counts.get((round_.pk, kind), {})))
        views.append(RoundView(round=round_, stages=stages[round_.pk], gates=gates, job=jobs.get(round_.pk)))
    return views


@dataclass(frozen=True)
class Budget:
    spent_usd: Decimal
    spent_tokens: int
    budget_usd: Decimal | None
    budget_tokens: int | None

    @property
    def usd_percent(self) -> float | None:
        return float(100 * self.spent_usd / self.budget_usd) if self.budget_usd else None

    @property
    def tokens_percent(self) -> float | None:
        return 100 * self.spent_tokens / self.budget_tokens if self.budget_tokens else None


def experiment_budget(*, experiment: Experiment) -> Budget:
    """What the experiment has paid for (calls the ledger served free do not count) against its budget."""
    spent = experiment_spend(experiment_id=experiment.pk)
    return Budget(spent.usd, spent.tokens, experiment.budget_usd, experiment.budget_tokens)


def approval_state(experiment: Experiment, rounds: list[RoundView]) -> tuple[bool, str]:
    """Whether approve-and-train may be pressed now and, when not, why (shown beside the disabled button)."""
    S = Experiment.Status
    current = next((view for view in rounds if view.round.status in machine.ROUND_OPEN), None)
    if experiment.status == S.WAITING_APPROVAL:
        return True, ""
    if experiment.status in machine.ENDED:
        return False, f"The experiment is {experiment.get_status_display()}."
    if experiment.status == S.DRAFT:
        return False, "The experiment has not been started."
    if experiment.status == S.PAUSED:
        return False, f"The experiment is paused ({experiment.status_reason or 'no reason given'}); resume it first."
    if current is None:
        return False, "No round is open."
    if experiment.status == S.WAITING_REVIEW:
        waiting = [g for g in current.gates if g.undecided]
        text = ", ".join(f"{g.stage.name} ({g.undecided} undecided)" for g in waiting) or "its review gates"
        return False, f"Round {current.round.index} waits for review: {text}."
    if current.job is not None:
        job = current.job
        state = f"has {job.get_status_display()}" if job.is_finished else f"is {job.get_status_display()}"
        return False, f"Round {current.round.index} was approved: its training job #{job.pk} {state}."
    stage = current.live_stage
    where = f" at stage {stage.name} ({stage.get_status_display()})" if stage else ""
    if experiment.status == S.TRAINING:
        return False, f"Round {current.round.index} is training{where}."
    return False, f"Round {current.round.index} is running{where}; the train stage has not been reached."
