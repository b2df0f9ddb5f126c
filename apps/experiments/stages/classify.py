"""classify: task labels for the round's selected seeds (params: source local | llm).

The local pass labels every seed whose imported `task_category` the task vocabulary cannot place (an
imported one that it can place is stored as source `imported` and asks nothing); its answers come from
the local classifier, an offline endpoint of the gateway (apps.llm answers it on an llm worker, so this
process loads no model). The llm pass sends the local labels below `params.classifier_min_confidence`
to the LLM classifier when the config names one; without one they keep the local label and the
task_labels gate opens a review task for each (`label_subjects`). Every label is a TaskLabel row with its
source, confidence and call; the effective label is the highest source (review > llm > local > imported).
"""

from django.db.models import Q

from apps.datasets.models import Instruction
from apps.experiments.models import SeedSelection, TaskLabel
from apps.experiments.stages.base import Context, GatewayMixin, Outcome, StageKind
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.selectors import llm_request_for
from apps.llm.services import llm_endpoint_create
from workers.algorithms.task_vocabulary import UnknownTaskLabel, to_task_category
from workers.llm.prompts import get_template

LOCAL_NAME = "offline:task-classifier"  # the config's shorthand names the shared endpoint
# review_gate opens subjects of this priority whatever the gate's sample says (contested verdicts are 2).
MUST_REVIEW = 3
S = TaskLabel.Source


def imported_category(instruction: Instruction) -> str | None:
    try:
        return to_task_category(instruction.task_category) if instruction.task_category.strip() else None
    except UnknownTaskLabel:
        return None


def local_endpoint(ctx: Context) -> LLMEndpoint:
    """The experiment's classifier when it is the local one, else the shared local-classifier endpoint."""
    endpoint = ctx.endpoint("classifier")
    if endpoint is not None and endpoint.backend == LLMEndpoint.Backend.LOCAL_CLASSIFIER:
        return endpoint
    found = LLMEndpoint.objects.filter(name=LOCAL_NAME, backend=LLMEndpoint.Backend.LOCAL_CLASSIFIER).first()
    return found or llm_endpoint_create(name=LOCAL_NAME, backend=LLMEndpoint.Backend.LOCAL_CLASSIFIER)


def llm_endpoint(ctx: Context) -> LLMEndpoint | None:
    endpoint = ctx.endpoint("classifier")
    if endpoint is None or endpoint.backend == LLMEndpoint.Backend.LOCAL_CLASSIFIER:
        return None
    return endpoint


def min_confidence(ctx: Context) -> float:
    return float(ctx.params.get("classifier_min_confidence", 0.5))


def _unsure(ctx: Context):
    """Local labels of this experiment below the confidence floor."""
    return TaskLabel.objects.filter(experiment=ctx.experiment, source=S.LOCAL).filter(
        Q(confidence__lt=min_confidence(ctx)) | Q(confidence__isnull=True)
    )


def selected_ids(ctx: Context, after: int = 0, limit: int | None = None) -> list[int]:
    qs = (
        SeedSelection.objects.filter(round=ctx.round, instruction_id__gt=after)
        .order_by("instruction_id")
        .values_list("instruction_id", flat=True)
    )
    return list(qs[:limit] if limit else qs)


def label_subjects(ctx: Context) -> list[tuple[int, int]]:
    """For the task_labels gate: each selected seed's effective label (TaskLabel id, priority); a local
    label below the floor that no LLM or reviewer replaced must be reviewed."""
    floor = min_confidence(ctx)
    labels: dict[int, dict[str, TaskLabel]] = {}
    for label in TaskLabel.objects.filter(experiment=ctx.experiment, instruction_id__in=selected_ids(ctx)):
        labels.setdefault(label.instruction_id, {})[label.source] = label
    out = []
    for by_source in labels.values():
        best = next(by_source[s] for s in TaskLabel.PRIORITY if s in by_source)
        unsure = best.source == S.LOCAL and (best.confidence is None or best.confidence < floor)
        out.append((best.pk, MUST_REVIEW if unsure else 0))
    return sorted(out)


class ClassifyStage(GatewayMixin, StageKind):
    name = "classify"
    uses_calls = True

    def _source(self, ctx: Context) -> str:
        return ctx.run.params.get("source", "local")

    def _endpoint(self, ctx: Context) -> LLMEndpoint | None:
        return local_endpoint(ctx) if self._source(ctx) == "local" else llm_endpoint(ctx)

    def _todo(self, ctx: Context, ids: list[int]) -> list[int]:
        if self._source(ctx) == "local":
            return ids
        if llm_endpoint(ctx) is None:
            return []
        return sorted(set(_unsure(ctx).filter(instruction_id__in=ids).values_list("instruction_id", flat=True)))

    def start(self, ctx: Context) -> None:
        ctx.run.total = len(self._todo(ctx, selected_ids(ctx)))

    def units(self, ctx: Context, after: int, limit: int) -> list[int]:
        return selected_ids(ctx, after, limit)

    def process(self, ctx: Context, ids: list[int]) -> None:
        todo = self._todo(ctx, ids)
        if not todo:
            return
        instructions = Instruction.objects.in_bulk(todo)
        keyed, imported = [], []
        endpoint = self._endpoint(ctx)
        template = get_template("classify_task")
        for pk in todo:
            instruction = instructions[pk]
            category = imported_category(instruction) if self._source(ctx) == "local" else None
            if category is not None:
                imported.append(
                    TaskLabel(experiment=ctx.experiment, instruction=instruction, category=category, source=S.IMPORTED)
                )
                continue
            variables = {"instruction": instruction.text, "input": instruction.input}
            keyed.append((ctx.item(pk, "task"), llm_request_for(endpoint, template, variables)))
        TaskLabel.objects.bulk_create(imported, ignore_conflicts=True)
        ctx.run.state["imported"] = ctx.run.state.get("imported", 0) + len(imported)
        self.enqueue(ctx, endpoint, "classifier", keyed)

    def collect(self, ctx: Context, ids: list[int]) -> None:
        todo = self._todo(ctx, ids)
        finals = self.finals(ctx, [ctx.item(pk, "task") for pk in todo])
        source = S.LOCAL if self._source(ctx) == "local" else S.LLM
        rows = []
        for pk in todo:
            call = finals.get(ctx.item(pk, "task"))
            if call is None:  # labelled from its imported category, asked nothing
                ctx.run.done += 1
                continue
            if call.status != LLMCall.Status.OK or not (call.parsed or {}).get("category"):
                ctx.run.failed += 1  # left to the local label (llm pass) or to no label (the gate shows it)
                continue
            rows.append(
                TaskLabel(
                    experiment=ctx.experiment,
                    instruction_id=pk,
                    category=call.parsed["category"],
                    confidence=call.parsed.get("confidence"),
                    source=source,
                    call=call,
                )
            )
        TaskLabel.objects.bulk_create(rows, ignore_conflicts=True)
        ctx.run.done += len(rows)

    def finalize(self, ctx: Context) -> Outcome:
        ids = selected_ids(ctx)
        labels = TaskLabel.objects.filter(experiment=ctx.experiment, instruction_id__in=ids)
        counts = {source: labels.filter(source=source).count() for source in S.values}
        unsure = _unsure(ctx).filter(instruction_id__in=ids)
        counts["below_floor"] = unsure.count()
        counts["to_review"] = unsure.exclude(
            instruction_id__in=labels.filter(source__in=[S.LLM, S.REVIEW]).values("instruction_id")
        ).count()
        counts["unlabelled"] = len(set(ids) - set(labels.values_list("instruction_id", flat=True)))
        ctx.round.metrics = {**ctx.round.metrics, "classification": counts}
        ctx.round.save(update_fields=["metrics", "updated_at"])
        return Outcome(done=True)
