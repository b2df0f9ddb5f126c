"""Reads for the review pages: what each task is about, loaded for a whole page of tasks at once.

A review task points at its subject through a generic relation (a judgment, a response, an instruction,
a task label, an LLM call or one experiment's use of it). Loading a page never follows that relation row
by row: the tasks are grouped by kind and every kind's subjects come in one query with what they show
(instruction, answers, lineage, call), plus one query for the rounds and one for the experiments' task
labels, whatever the page's length.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType

from apps.datasets.models import Instruction
from apps.experiments.models import Lineage, Round, TaskLabel
from apps.judging.models import Judgment, Response
from apps.llm.models import LLMCall, LLMCallUse
from apps.reviews.kinds import Kind
from apps.reviews.models import ReviewTask
from apps.reviews.selectors import review_draft_for, review_task_votes
from workers.algorithms.task_vocabulary import TASK_CATEGORIES

DEFAULT_TAU = 1.0
DEFAULT_HARD_RULE = "gap >= tau"


@dataclass
class Item:
    """One task with its subject, ready for a template. Fields a kind does not use stay empty."""

    task: ReviewTask
    round: Round | None = None
    instruction: Instruction | None = None
    category: str = ""  # the instruction's task category as the experiment sees it
    judgment: Judgment | None = None
    response: Response | None = None  # rewrite, rationale, teacher answer
    original: Response | None = None  # a rewrite's original answer
    lineage: Lineage | None = None
    label: TaskLabel | None = None
    call: LLMCall | None = None
    tau: float = DEFAULT_TAU
    hard_rule: str = DEFAULT_HARD_RULE
    missing: bool = False  # the subject row is gone (deleted with its dataset or experiment)
    extra: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The text a reviewer may edit: the rewrite, the generated instruction, the rationale, the answer."""
        kind = self.task.kind
        if kind == Kind.GENERATED and self.instruction is not None:
            return self.instruction.text
        if kind == Kind.RATIONALE and self.response is not None:
            return self.response.rationale or self.response.text
        if kind in (Kind.REWRITE, Kind.ANSWER) and self.response is not None:
            return self.response.text
        if kind == Kind.TASK_LABEL and self.label is not None:
            return self.label.category
        return ""

    @property
    def summary(self) -> str:
        """One line for the table."""
        if self.instruction is not None:
            return self.instruction.text
        if self.call is not None:
            return self.call.reply or self.call.error
        return ""


def _round_params(round_: Round | None) -> tuple[float, str]:
    params = ((round_.experiment.config or {}).get("params") or {}) if round_ is not None else {}
    try:
        tau = float(params.get("tau", DEFAULT_TAU))
    except (TypeError, ValueError):
        tau = DEFAULT_TAU
    return tau, str(params.get("hard_rule") or DEFAULT_HARD_RULE)


def _load_verdicts(items: list[Item]) -> None:
    rows = Judgment.objects.select_related("instruction", "teacher_response", "student_response").in_bulk(
        [i.task.subject_id for i in items]
    )
    for item in items:
        item.judgment = rows.get(item.task.subject_id)
        item.instruction = item.judgment.instruction if item.judgment else None


def _load_responses(items: list[Item]) -> None:
    rows = Response.objects.select_related("instruction", "rewrites").in_bulk([i.task.subject_id for i in items])
    for item in items:
        item.response = rows.get(item.task.subject_id)
        if item.response is not None:
            item.instruction, item.original = item.response.instruction, item.response.rewrites


def _load_generated(items: list[Item]) -> None:
    rows = Instruction.objects.in_bulk([i.task.subject_id for i in items])
    lineages = {
        row.instruction_id: row
        for row in Lineage.objects.select_related("seed", "nearest").filter(instruction_id__in=list(rows))
    }
    for item in items:
        item.instruction = rows.get(item.task.subject_id)
        item.lineage = lineages.get(item.task.subject_id)


def _load_labels(items: list[Item]) -> None:
    rows = TaskLabel.objects.select_related("instruction").in_bulk([i.task.subject_id for i in items])
    for item in items:
        item.label = rows.get(item.task.subject_id)
        item.instruction = item.label.instruction if item.label else None


def _load_calls(items: list[Item]) -> None:
    """An unparsable reply is an LLMCallUse (in a round) or, for a call nobody used, the LLMCall itself."""
    by_model: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_model[ContentType.objects.get_for_id(item.task.subject_type_id).model].append(item)
    uses = LLMCallUse.objects.select_related("call").in_bulk([i.task.subject_id for i in by_model["llmcalluse"]])
    for item in by_model["llmcalluse"]:
        use = uses.get(item.task.subject_id)
        item.call = use.call if use else None
        item.extra["use"] = use
    calls = LLMCall.objects.in_bulk([i.task.subject_id for i in by_model["llmcall"]])
    for item in by_model["llmcall"]:
        item.call = calls.get(item.task.subject_id)


LOADERS = {
    Kind.VERDICT: _load_verdicts,
    Kind.REWRITE: _load_responses,
    Kind.RATIONALE: _load_responses,
    Kind.ANSWER: _load_responses,
    Kind.GENERATED: _load_generated,
    Kind.TASK_LABEL: _load_labels,
    Kind.INVALID_REPLY: _load_calls,
}


def _categories(items: list[Item]) -> None:
    """Each item's category: the experiment's label that counts (reviewer > LLM > local > imported), else
    the instruction's own; a task-label task shows the label it is about."""
    wanted = {(i.round.experiment_id, i.instruction.pk) for i in items if i.round is not None and i.instruction}
    rank = {source: n for n, source in enumerate(TaskLabel.PRIORITY)}
    best: dict[tuple[int, int], tuple[int, str]] = {}
    if wanted:
        rows = TaskLabel.objects.filter(
            experiment_id__in={e for e, _ in wanted}, instruction_id__in={i for _, i in wanted}
        ).values_list("experiment_id", "instruction_id", "source", "category")
        for experiment_id, instruction_id, source, category in rows:
            key = (experiment_id, instruction_id)
            if key in wanted and (key not in best or rank[source] < best[key][0]):
                best[key] = (rank[source], category)
    for item in items:
        if item.task.kind == Kind.TASK_LABEL and item.label is not None:
            item.category = item.label.category
        elif item.instruction is not None:
            key = (item.round.experiment_id, item.instruction.pk) if item.round is not None else None
            item.category = best[key][1] if key in best else item.instruction.task_category


def review_items(tasks: Sequence[ReviewTask]) -> list[Item]:
    """The tasks (in their order) with their subjects, in a fixed number of queries: one per kind present,
    one for the rounds and their experiments, one for task labels."""
    tasks = list(tasks)
    round_ids = {t.round_id for t in tasks if t.round_id is not None}
    rounds = Round.objects.select_related("experiment").in_bulk(round_ids) if round_ids else {}
    items = [Item(task=t, round=rounds.get(t.round_id)) for t in tasks]
    by_kind: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        item.tau, item.hard_rule = _round_params(item.round)
        by_kind[item.task.kind].append(item)
    for kind, group in by_kind.items():
        LOADERS[kind](group)
    _categories(items)
    for item in items:
        subject = item.judgment or item.response or item.lineage or item.label or item.call or item.instruction
        item.missing = subject is None
    return items


def review_item(task: ReviewTask) -> Item:
    return review_items([task])[0]


@dataclass
class Focus:
    """What the focus view shows besides the item: the reviewer's draft, the votes so far."""

    item: Item
    draft: object | None
    votes: list
    my_vote: object | None


def focus_of(*, task: ReviewTask, reviewer) -> Focus:
    votes = review_task_votes(task_id=task.pk)
    mine = next((v for v in votes if v.reviewer_id == reviewer.pk), None)
    draft = review_draft_for(reviewer=reviewer, task_id=task.pk) if reviewer.is_authenticated else None
    return Focus(item=review_item(task), draft=draft, votes=votes, my_vote=mine)


def task_vocabulary() -> tuple[str, ...]:
    return tuple(TASK_CATEGORIES)


def tasks_in_order(ids: Iterable[int]) -> list[ReviewTask]:
    """Tasks by id in the order given (missing ones left out), with their content type cached."""
    ids = list(ids)
    rows = ReviewTask.objects.select_related("subject_type").in_bulk(ids)
    return [rows[pk] for pk in ids if pk in rows]
