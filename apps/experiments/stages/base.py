"""What every stage kind shares: the context a step runs in, the phases, and the gateway plumbing.

A kind walks its units (instruction ids, or positions in a plan it made at start) by keyset from the stage
run's cursor. `process` handles one batch of them (LLM kinds queue calls), `collect` stores what the calls
answered once all of them have settled, and `finalize` runs at the end (and again on every wake-up while
the stage waits for reviewers, an approval or a training job). Every write is idempotent: unique
constraints plus ignore_conflicts, and the gateway never makes a call it already holds, so a step re-run
after a crash makes no new rows and pays nothing.
"""

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from django.db.models import Min, Sum

from apps.experiments.machine import rng_for
from apps.experiments.models import Experiment, Round, StageRun
from apps.llm.models import LLMCall, LLMCallUse, LLMEndpoint
from apps.llm.selectors import llm_call_finals
from apps.llm.services import llm_calls_enqueue

P = StageRun.Phase
ROLE_FIELDS = {
    "teacher": "teacher_endpoint",
    "judge": "judge_endpoint",
    "generator": "generator_endpoint",
    "classifier": "classifier_endpoint",
    "student": "student_endpoint",
}


@dataclass(frozen=True)
class Outcome:
    more: bool = True  # more work is ready right now
    done: bool = False  # the stage is finished
    wait: str | None = None  # "review" | "approval" | "training": waiting for something outside


@dataclass
class Context:
    experiment: Experiment
    round: Round
    run: StageRun

    @property
    def config(self) -> dict:
        return self.experiment.config or {}

    @property
    def params(self) -> dict:
        return self.config.get("params", {})

    @property
    def batch_size(self) -> int:
        return int(self.params.get("batch_size") or 256)

    @property
    def seed(self) -> int:
        return int(self.experiment.seed)

    def rng(self):
        return rng_for(self.seed, self.round.index, self.run.name)

    def endpoint(self, role: str) -> LLMEndpoint | None:
        field = ROLE_FIELDS[role]
        endpoint_id = getattr(self.experiment, f"{field}_id")
        return LLMEndpoint.objects.get(pk=endpoint_id) if endpoint_id else None

    @cached_property
    def uses(self):
        """This stage's uses of the gateway's calls."""
        return LLMCallUse.objects.filter(experiment_id=self.experiment.pk, round_id=self.round.pk, stage=self.run.name)

    def item(self, unit: int, variant: str) -> str:
        # The round is in the key: a use is unique per (call, experiment, item), and each round must count
        # its own uses even when the ledger already holds the call.
        return f"r{self.round.index}/{self.run.name}:{unit}:{variant}"


class StageKind:
    """A kind of stage; knows nothing of the recipe that runs it."""

    name = ""
    uses_calls = False

    def start(self, ctx: Context) -> None:
        """Once, when the stage run starts: count the work (run.total), make a plan (run.state)."""

    def units(self, ctx: Context, after: int, limit: int) -> list[int]:
        return []

    def process(self, ctx: Context, ids: list[int]) -> None:
        """One batch of the submit phase."""

    def outstanding(self, ctx: Context) -> int:
        """How many items still wait for their calls (LLM kinds)."""
        return 0

    def collect(self, ctx: Context, ids: list[int]) -> None:
        """One batch of the collect phase: store what the settled calls answered."""

    def finalize(self, ctx: Context) -> Outcome:
        return Outcome(done=True)

    def step(self, ctx: Context) -> Outcome:
        run = ctx.run
        if run.phase == P.SUBMIT:
            ids = self.units(ctx, run.cursor, ctx.batch_size)
            if ids:
                self.process(ctx, ids)
                run.cursor = ids[-1]
                return Outcome()
            run.phase, run.cursor = (P.WAIT if self.uses_calls else P.FINALIZE), 0
            return Outcome()
        if run.phase == P.WAIT:
            left = self.outstanding(ctx)
            run.done = max(0, run.total - left)
            run.cost = self.cost(ctx)
            if left:
                return Outcome(more=False)  # woken when calls settle (llm_calls_settled)
            run.phase, run.cursor, run.done = P.COLLECT, 0, 0
            return Outcome()
        if run.phase == P.COLLECT:
            ids = self.units(ctx, run.cursor, ctx.batch_size)
            if ids:
                self.collect(ctx, ids)
                run.cursor = ids[-1]
                return Outcome()
            run.phase, run.cursor = P.FINALIZE, 0
            return Outcome()
        return self.finalize(ctx)

    def cost(self, ctx: Context) -> Decimal:
        if not self.uses_calls:
            return Decimal(0)
        return ctx.uses.filter(paid=True).aggregate(c=Sum("call__cost"))["c"] or Decimal(0)


class GatewayMixin:
    """Queue requests through the gateway's ledger and read back each item's final call."""

    def enqueue(self, ctx: Context, endpoint: LLMEndpoint, purpose: str, keyed: list[tuple[str, object]]) -> None:
        if not keyed:
            return
        llm_calls_enqueue(
            endpoint=endpoint,
            requests=[request for _, request in keyed],
            purpose=purpose,
            experiment_id=ctx.experiment.pk,
            round_id=ctx.round.pk,
            stage=ctx.run.name,
            items=[key for key, _ in keyed],
        )

    def outstanding(self, ctx: Context) -> int:
        return ctx.uses.filter(call__status=LLMCall.Status.PENDING).values("item").distinct().count()

    def finals(self, ctx: Context, items: list[str]) -> dict[str, LLMCall]:
        """Each item's outcome: the last fresh sample of the call first made for it."""
        if not items:
            return {}
        first = dict(
            ctx.uses.filter(item__in=items).values("item").annotate(first=Min("call_id")).values_list("item", "first")
        )
        finals = llm_call_finals(sorted(set(first.values())))
        return {item: finals[call_id] for item, call_id in first.items() if call_id in finals}
