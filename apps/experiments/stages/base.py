"""What every stage kind shares: the context a step runs in, the phases, and the gateway plumbing.

A kind walks its units (instruction ids, or positions in a plan it made at start) by keyset from the stage
run's cursor. `process` handles one batch of them (LLM kinds queue calls), `collect` stores what the calls
answered once all of them have settled, and `finalize` runs at the end (and again on every wake-up while
the stage waits for reviewers, an approval or a training job). Every write is idempotent: unique
constraints plus ignore_conflicts, and the gateway never makes a call it already holds, so a step re-run
after a crash makes no new rows and pays nothing.

While an LLM kind waits, each wake-up costs what changed, not what the stage holds: the run's cursor walks
the stage's uses in primary-key order (the order they were queued, the order the runner sends them) past
every use whose call has settled and stops at the first one still pending, keeping a tally of what it
passed. Only entering the wait and leaving it look at all of the stage's uses, so leaving is exact whatever
happened behind the cursor (an operator's retry, a use committed out of order).

A kind whose results are all read through `finals` (`collects_early`) collects, while it waits, each batch
whose uses the cursor has passed, in order, so little is left to collect once the last call settles; a
batch that turns out to read a call still pending (a fresh sample of an unparsable reply) is undone and
tried again later. Its cursor and count wait in the run's state until the collect phase takes them over.
"""

from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property

from django.db import transaction
from django.db.models import Exists, Max, Min, OuterRef, Sum

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
    # The collect batch's uses lie in this primary-key range (lo, hi] (noted when its batch was queued),
    # so `finals` reads those, not all of the stage's; None: no range known, read them all.
    window: tuple[int, int] | None = None
    early: bool = False  # collecting during the wait: reading a call still pending undoes the batch

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

    def collects_early(self, ctx: Context) -> bool:
        """True when `collect` reads every result through `finals` and changes nothing but rows and the
        run's done and failed counts, so a batch can be collected (or undone) while later calls are out."""
        return False

    def finalize(self, ctx: Context) -> Outcome:
        return Outcome(done=True)

    def step(self, ctx: Context) -> Outcome:
        run = ctx.run
        if run.phase == P.SUBMIT:
            ids = self.units(ctx, run.cursor, ctx.batch_size)
            if ids:
                if not self.uses_calls:
                    self.process(ctx, ids)
                else:
                    spans = run.state.get(SPANS, []) if run.cursor else []
                    lo = _last_use_pk()
                    self.process(ctx, ids)
                    run.state = {**run.state, SPANS: [*spans, [ids[0], ids[-1], lo, _last_use_pk()]]}
                run.cursor = ids[-1]
                return Outcome()
            run.phase, run.cursor = (P.WAIT if self.uses_calls else P.FINALIZE), 0
            return Outcome()
        if run.phase == P.WAIT:
            left = self.outstanding(ctx)
            run.done = max(0, run.total - left)
            run.cost = self.cost(ctx)
            if left:
                if self.collects_early(ctx) and self._collect_early(ctx):
                    return Outcome()
                return Outcome(more=False)  # woken when calls settle (llm_calls_settled)
            run.cursor, run.done = run.state.get(EARLY, (0, 0))
            run.phase, run.state = P.COLLECT, {key: value for key, value in run.state.items() if key != EARLY}
            return Outcome()
        if run.phase == P.COLLECT:
            ids = self.units(ctx, run.cursor, ctx.batch_size)
            if ids:
                ctx.window = _window(run.state.get(SPANS, []), ids[0], ids[-1])
                self.collect(ctx, ids)
                run.cursor = ids[-1]
                return Outcome()
            run.phase, run.cursor = P.FINALIZE, 0
            run.state = {key: value for key, value in run.state.items() if key != SPANS}
            return Outcome()
        return self.finalize(ctx)

    def _collect_early(self, ctx: Context) -> bool:
        """Collect the next batch if the wait's cursor has passed all of its uses; True if it did."""
        run = ctx.run
        cursor, done = run.state.get(EARLY, (0, 0))
        ids = self.units(ctx, cursor, ctx.batch_size)
        window = _window(run.state.get(SPANS, []), ids[0], ids[-1]) if ids else None
        if window is None or window[1] > run.cursor:
            return False
        wait_done, failed = run.done, run.failed
        ctx.window, ctx.early, run.done = window, True, done
        try:
            with transaction.atomic():
                self.collect(ctx, ids)
        except CollectNotReady:
            run.failed = failed
            return False
        finally:
            ctx.early = False
            done, run.done = run.done, wait_done
        run.state = {**run.state, EARLY: [ids[-1], done]}
        return True

    def cost(self, ctx: Context) -> Decimal:
        if not self.uses_calls:
            return Decimal(0)
        tally = ctx.run.state.get(WAIT_TALLY)
        if tally is not None:  # the wait's scan is under way: what it passed (exact once the wait ends)
            return Decimal(tally["cost"])
        return paid_cost(ctx.uses)


WAIT_TALLY = "wait"  # run.state key: the wait phase's tally of the uses its cursor has passed
SPANS = "spans"  # run.state key: [first unit, last unit, lo, hi] of each queued batch; its uses are in (lo, hi]
EARLY = "collected"  # run.state key: [unit cursor, done] of the batches collected during the wait
SCAN_FIRST, SCAN_MOST = 64, 4096  # uses read by a wake-up's first query, and at most by one query


class CollectNotReady(Exception):
    """A batch collected during the wait read a call still pending: its writes are undone."""


def _last_use_pk() -> int:
    return LLMCallUse.objects.aggregate(m=Max("pk"))["m"] or 0


def _window(spans: list, first: int, last: int) -> tuple[int, int] | None:
    """The range of use keys holding the uses queued for units first..last: that of the batches that
    queued them (one, unless the batches were replayed or resized); None when no batch is noted."""
    hits = [(lo, hi) for a, b, lo, hi in spans if a <= last and b >= first]
    if not hits:
        return None
    return min(lo for lo, _ in hits), max(hi for _, hi in hits)


def paid_cost(uses) -> Decimal:
    return uses.filter(paid=True).aggregate(c=Sum("call__cost"))["c"] or Decimal(0)


def _final(uses):
    """The uses whose call is its chain's last (no fresh sample replaced its reply): one per item."""
    return uses.filter(~Exists(LLMCall.objects.filter(resample_of_id=OuterRef("call_id"))))


def _wait_enter(ctx: Context) -> int:
    """Start (or restart) the wait's scan: one pass over the stage's uses puts the cursor before the first
    use still pending and tallies everything before it. Returns the items left (0: none pending)."""
    run, uses = ctx.run, ctx.uses
    first = uses.filter(call__status=LLMCall.Status.PENDING).order_by("pk").values_list("pk", flat=True).first()
    if first is None:
        run.state = {key: value for key, value in run.state.items() if key != WAIT_TALLY}
        run.cursor = 0
        return 0
    passed = uses.filter(pk__lt=first)
    tally = {
        "items": uses.values("item").distinct().count(),
        "finals": _final(passed).count(),
        "cost": str(paid_cost(passed)),
    }
    run.state = {**run.state, WAIT_TALLY: tally}
    run.cursor = first - 1
    return max(1, tally["items"] - tally["finals"])


def _wait_scan(ctx: Context) -> int:
    """Move the cursor past the uses that settled since the last look; items left (at least 1 while one is
    pending; an estimate that counts a settled item ahead of the cursor as left)."""
    run = ctx.run
    tally = dict(run.state[WAIT_TALLY])
    cost, size = Decimal(tally["cost"]), SCAN_FIRST
    ours = (ctx.experiment.pk, ctx.round.pk, run.name)
    while True:
        # The next uses of the whole table in key order, this stage's kept here: a read of the primary key
        # that no planner turns into a pass over the stage (PostgreSQL would, by the stage's index).
        rows = list(
            LLMCallUse.objects.filter(pk__gt=run.cursor)
            .order_by("pk")
            .values_list("pk", "experiment_id", "round_id", "stage", "call_id", "call__status", "paid", "call__cost")[
                :size
            ]
        )
        passed, stopped, cursor = [], False, run.cursor
        for pk, experiment_id, round_id, stage, call_id, status, paid, call_cost in rows:
            if (experiment_id, round_id, stage) == ours:
                if status == LLMCall.Status.PENDING:
                    stopped = True
                    break
                passed.append((call_id, status, paid, call_cost))
            cursor = pk
        invalid = [call_id for call_id, status, _, _ in passed if status == LLMCall.Status.INVALID]
        replaced = set(
            LLMCall.objects.filter(resample_of_id__in=invalid).values_list("resample_of_id", flat=True)
            if invalid
            else ()
        )
        tally["finals"] += sum(1 for call_id, _, _, _ in passed if call_id not in replaced)
        cost += sum((c for _, _, paid, c in passed if paid and c), Decimal(0))
        run.cursor = cursor
        if stopped:
            tally["cost"] = str(cost)
            run.state = {**run.state, WAIT_TALLY: tally}
            return max(1, tally["items"] - tally["finals"])
        if len(rows) < size:  # past the last use: make sure with one look at all of them
            return _wait_enter(ctx)
        size = min(4 * size, SCAN_MOST)


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
        """Items still waiting for their calls: exact when it is 0 (see the module's note on the wait)."""
        if WAIT_TALLY in ctx.run.state:
            return _wait_scan(ctx)
        return _wait_enter(ctx)

    def finals(self, ctx: Context, items: list[str]) -> dict[str, LLMCall]:
        """Each item's outcome: the last fresh sample of the call first made for it."""
        if not items:
            return {}
        first = _first_calls(ctx, items)
        finals = llm_call_finals(sorted(set(first.values())))
        if ctx.early and any(call.status == LLMCall.Status.PENDING for call in finals.values()):
            raise CollectNotReady
        return {item: finals[call_id] for item, call_id in first.items() if call_id in finals}


def _first_calls(ctx: Context, items: list[str]) -> dict[str, int]:
    """{item: the first call made for it}. Within the batch's window when one is known: the first call of an
    item is the one queued with its batch (the fresh samples of its reply came later, with higher keys);
    an item not found there (never asked, or asked before the window was noted) is looked up in all."""
    if ctx.window is None:
        return _first_in(ctx.uses, items)
    # The window by its keys alone, this stage's rows kept here: PostgreSQL's planner would serve a query
    # that also names the stage by the stage's index, a pass over all of its uses for every batch.
    ours, wanted, found = (ctx.experiment.pk, ctx.round.pk, ctx.run.name), set(items), {}
    rows = LLMCallUse.objects.filter(pk__gt=ctx.window[0], pk__lte=ctx.window[1]).values_list(
        "experiment_id", "round_id", "stage", "item", "call_id"
    )
    for experiment_id, round_id, stage, item, call_id in rows.iterator(2000):
        if (experiment_id, round_id, stage) == ours and item in wanted and call_id < found.get(item, call_id + 1):
            found[item] = call_id
    missing = [item for item in items if item not in found]
    return {**found, **_first_in(ctx.uses, missing)} if missing else found


def _first_in(uses, items: list[str]) -> dict[str, int]:
    if not items:
        return {}
    return dict(uses.filter(item__in=items).values("item").annotate(first=Min("call_id")).values_list("item", "first"))
