"""Where export records come from: a dataset (optionally filtered) or a round's frozen snapshot.

A source walks its rows by keyset (id or position) in chunks, bounded by where the rows ended when the
export began, so every pass over it (a bundle makes one per format) yields the same records. Each chunk
costs a handful of queries whatever its size: the optional fields (provenance, judge scores, reviewer
decisions) are looked up for the whole chunk at once. While it walks, a source counts what the manifest
needs (categories, origins, kinds, datasets, review coverage).
"""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db.models import Max

from apps.datasets.models import Dataset, Instruction
from apps.experiments.models import Lineage, Round, Snapshot, SnapshotItem, TaskLabel
from apps.judging.models import Judgment, Response
from apps.reviews.models import ReviewTask, ReviewVerdict
from workers.llm.prompts import task_text

CHUNK = 5000
AUTO_REVIEWER = "auto-approve"  # the account auto-approve decisions are recorded under (review_gate)
STEP_KINDS = ("predict", "explain")


@dataclass
class Options:
    provenance: bool = False
    scores: bool = False
    review: bool = False

    @classmethod
    def from_dict(cls, data: dict | None) -> "Options":
        data = data or {}
        return cls(**{k: bool(data.get(k)) for k in ("provenance", "scores", "review")})

    def as_dict(self) -> dict:
        return {"provenance": self.provenance, "scores": self.scores, "review": self.review}


@dataclass
class Tally:
    """What one pass counted, for the manifest."""

    records: int = 0
    by_category: Counter = field(default_factory=Counter)
    by_origin: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)
    by_dataset: Counter = field(default_factory=Counter)
    reviewed: int = 0
    automatic: int = 0
    decisions: Counter = field(default_factory=Counter)

    def add(self, record: dict, dataset_id: int, origin: str, decision: dict | None) -> None:
        self.records += 1
        self.by_category[record.get("category") or ""] += 1
        self.by_origin[origin] += 1
        self.by_kind[record.get("kind") or "sft"] += 1
        self.by_dataset[dataset_id] += 1
        if decision is not None:
            self.reviewed += 1
            self.decisions[decision["decision"]] += 1
            self.automatic += decision["automatic"]


def _span(field: str, ids) -> dict:
    """A range filter over the ids' span. A chunk's lookups ask for a range, not an IN list of thousands of
    ids (binding those costs more than the rows); what falls in the range but is not asked for is dropped."""
    return {f"{field}__gte": min(ids), f"{field}__lte": max(ids)}


def _task_resolution() -> bool:
    """Whether review tasks carry their own resolution (decision, edited_text: what their reviewers agreed
    on, with several reviewers a task). Without it a task's decision is its latest verdict."""
    return any(f.name == "decision" for f in ReviewTask._meta.concrete_fields)


def _latest_verdicts(model, subject_ids, **task_filter) -> dict[int, dict]:
    """{subject id: {kind, decision, reviewer, edited, automatic}} for each decided task on the subjects:
    the task's resolution where tasks keep one, else its latest verdict; the reviewer is the latest voter."""
    if not subject_ids:
        return {}
    wanted = set(subject_ids)
    tasks = ReviewTask.objects.filter(
        subject_type=ContentType.objects.get_for_model(model), **_span("subject_id", wanted), **task_filter
    )
    latest = ReviewVerdict.objects.filter(task__in=tasks).values("task_id").annotate(last=Max("id")).values("last")
    columns = ["task__subject_id", "task__kind", "decision", "reviewer__username"]
    resolved = _task_resolution()
    if resolved:
        columns.append("task__decision")
    found: dict[int, dict] = {}
    for row in ReviewVerdict.objects.filter(pk__in=latest).order_by("pk").values_list(*columns):
        subject_id, kind, decision, reviewer = row[:4]
        if subject_id not in wanted:
            continue
        if resolved:
            decision = row[4]
            if not decision:  # voted on, not settled yet (waiting for more votes, or in conflict)
                continue
        found[subject_id] = {
            "kind": kind,
            "decision": decision,
            "reviewer": reviewer,
            "edited": decision == ReviewVerdict.Decision.EDIT,
            "automatic": reviewer == AUTO_REVIEWER,
        }
    return found


def _round_names(round_ids) -> dict[int, tuple[str, int]]:
    rows = Round.objects.filter(pk__in={r for r in round_ids if r}).values_list("pk", "experiment__name", "index")
    return {pk: (name, index) for pk, name, index in rows}


def _scores(judgments, ids) -> dict[int, dict]:
    """{instruction id: scores} from the latest of the given discrimination judgments of each id."""
    found: dict[int, dict] = {}
    wanted = set(ids)
    rows = list(
        judgments.filter(**_span("instruction_id", wanted))
        .order_by("instruction_id", "id")
        .values_list(
            "instruction_id", "judge_model", "teacher_score", "student_score", "gap", "verdict", "contested", "round_id"
        )
    )
    rounds = _round_names(r[-1] for r in rows)
    for pk, judge, teacher, student, gap, verdict, contested, round_id in rows:
        if pk not in wanted:
            continue
        experiment, index = rounds.get(round_id, ("", None))
        found[pk] = {
            "judge_model": judge,
            "teacher_score": teacher,
            "student_score": student,
            "gap": gap,
            "verdict": verdict,
            "contested": contested,
            "experiment": experiment,
            "round": index,
        }
    return found


def _lineages(ids) -> dict[int, tuple[str, int, int]]:
    wanted = set(ids)
    rows = Lineage.objects.filter(**_span("instruction_id", wanted))
    rows = rows.values_list("instruction_id", "origin", "seed_id", "round_id")
    return {pk: (origin, seed, round_id) for pk, origin, seed, round_id in rows if pk in wanted}


def _chat_parts(metadata: dict, output: str) -> tuple[str, list | None]:
    """(system, later turns) of an imported conversation: its metadata keeps the turns from the first
    answer on (see apps.datasets.formats.mapping.record_from_turns)."""
    if not metadata:
        return "", None
    system = metadata.get("system") if isinstance(metadata.get("system"), str) else ""
    turns = metadata.get("turns")
    if isinstance(turns, list) and turns and isinstance(turns[0], dict) and turns[0].get("content") == output:
        later = [t for t in turns[1:] if isinstance(t, dict) and {"role", "content"} <= set(t)]
        return system, later or None
    return system, None


class DatasetSource:
    """A dataset's instructions, optionally only a category, an origin or a list of ids."""

    kind = "dataset"

    def __init__(self, dataset: Dataset, *, category: str = "", origin: str = "", ids=None, options=None):
        self.dataset = dataset
        self.filters = {"category": category or "", "origin": origin or "", "ids": sorted(set(ids or []))}
        self.options = options or Options()
        qs = Instruction.objects.filter(dataset=dataset)
        if category:
            qs = qs.filter(task_category=category)
        if origin:
            qs = qs.filter(origin=origin)
        if ids:
            qs = qs.filter(pk__in=self.filters["ids"])
        self._qs = qs
        self.last_id = qs.aggregate(last=Max("pk"))["last"] or 0
        self.tally = Tally()
        self._chat: set[str] | None = None

    @property
    def label(self) -> str:
        parts = [f"dataset {self.dataset.name}"]
        parts += [f"{k} {v}" for k, v in self.filters.items() if v and k != "ids"]
        if self.filters["ids"]:
            parts.append(f"{len(self.filters['ids'])} chosen ids")
        return ", ".join(parts)

    def count(self) -> int:
        return self._qs.filter(pk__lte=self.last_id).count()

    def _chat_keys(self) -> set[str]:
        """Which of system and turns some row's metadata holds (asked once per source)."""
        if self._chat is None:
            self._chat = {key for key in ("system", "turns") if self._qs.filter(metadata__has_key=key).exists()}
        return self._chat

    def fields(self) -> set[str]:
        return {name for name, on in self.options.as_dict().items() if on} | self._chat_keys()

    def records(self) -> Iterator[dict]:
        self.tally = Tally()
        after, opts, name = 0, self.options, self.dataset.name
        columns = ("pk", "text", "input", "reference_output", "gold_label", "task_category", "origin", "parent_id")
        columns += ("created_in_round_id",)
        chats = bool(self._chat_keys())
        if chats:  # decoding every row's JSON costs as much as the rest of the row: only when it is needed
            columns += ("metadata",)
        while True:
            page = self._qs.filter(pk__gt=after, pk__lte=self.last_id).order_by("pk")
            rows = list(page.values_list(*columns)[:CHUNK])
            if not rows:
                return
            after = rows[-1][0]
            ids = [r[0] for r in rows]
            lineages = _lineages(ids) if opts.provenance else {}
            rounds = _round_names(r[8] for r in rows) if opts.provenance else {}
            judgments = Judgment.objects.filter(kind="discrimination")
            scores = _scores(judgments, ids) if opts.scores else {}
            reviews = _latest_verdicts(Instruction, ids)
            for row in rows:
                pk, text, input_, output, label, category, origin, parent, round_id = row[:9]
                system, turns = _chat_parts(row[9], output) if chats else ("", None)
                record = {"instruction": text, "input": input_, "output": output, "category": category, "label": label}
                if system:
                    record["system"] = system
                if turns:
                    record["turns"] = turns
                if opts.provenance:
                    lineage, seed, _ = lineages.get(pk, ("", parent, None))
                    experiment, index = rounds.get(round_id, ("", None))
                    record["provenance"] = {
                        "dataset": name,
                        "instruction_id": pk,
                        "origin": origin,
                        "lineage": lineage or None,
                        "seed_id": seed,
                        "experiment": experiment or None,
                        "round": index,
                    }
                if opts.scores and pk in scores:
                    record["scores"] = scores[pk]
                decision = reviews.get(pk)
                if opts.review and decision is not None:
                    record["review"] = decision
                self.tally.add(record, self.dataset.pk, origin, decision)
                yield record


class SnapshotSource:
    """A round's training set exactly as frozen: the snapshot's items in order, reviewers' edits applied."""

    kind = "round"

    def __init__(self, snapshot: Snapshot, *, options=None):
        self.snapshot = snapshot
        self.round = snapshot.round
        self.experiment = self.round.experiment
        self.filters: dict = {}
        self.options = options or Options()
        self.tally = Tally()

    @property
    def label(self) -> str:
        return f"{self.experiment.name} round {self.round.index}"

    def count(self) -> int:
        return self.snapshot.size

    def fields(self) -> set[str]:
        wanted = {name for name, on in self.options.as_dict().items() if on} | {"kind"}
        if SnapshotItem.objects.filter(snapshot=self.snapshot, kind__in=STEP_KINDS).exists():
            wanted.add("rationale")
        return wanted

    def _pairs(self, response_ids) -> dict[tuple[int, str], str]:
        rows = SnapshotItem.objects.filter(snapshot=self.snapshot, response_id__in=response_ids, kind__in=STEP_KINDS)
        return {(r, kind): target for r, kind, target in rows.values_list("response_id", "kind", "target")}

    def _labels(self, ids) -> dict[int, str]:
        rank = {source: n for n, source in enumerate(TaskLabel.PRIORITY)}
        best: dict[int, tuple[int, str]] = {}
        rows = TaskLabel.objects.filter(experiment=self.experiment, instruction_id__in=ids)
        for pk, source, category in rows.values_list("instruction_id", "source", "category"):
            if pk not in best or rank[source] < best[pk][0]:
                best[pk] = (rank[source], category)
        return {pk: category for pk, (_, category) in best.items()}

    def _reviews(self, ids, response_ids) -> dict[tuple[str, int], dict]:
        on_responses = _latest_verdicts(Response, response_ids, round=self.round)
        on_instructions = _latest_verdicts(Instruction, ids, round__experiment=self.experiment)
        found = {("i", pk): v for pk, v in on_instructions.items()}
        found.update({("r", pk): v for pk, v in on_responses.items()})
        return found

    def records(self) -> Iterator[dict]:
        self.tally = Tally()
        opts, after, index, experiment = self.options, -1, self.round.index, self.experiment.name
        columns = ("position", "kind", "prompt", "target", "instruction_id", "response_id", "instruction__text")
        columns += ("instruction__input", "instruction__gold_label", "instruction__task_category")
        columns += ("instruction__origin", "instruction__parent_id", "instruction__dataset_id")
        columns += ("instruction__dataset__name",)
        items = SnapshotItem.objects.filter(snapshot=self.snapshot)
        while True:
            rows = list(items.filter(position__gt=after).order_by("position").values_list(*columns)[:CHUNK])
            if not rows:
                return
            after = rows[-1][0]
            ids = list({r[4] for r in rows})
            response_ids = [r[5] for r in rows if r[5]]
            pairs = self._pairs([r[5] for r in rows if r[1] in STEP_KINDS and r[5]])
            labels = self._labels(ids)
            lineages = _lineages(ids) if opts.provenance else {}
            scores = {}
            if opts.scores:
                judgments = Judgment.objects.filter(
                    kind="discrimination",
                    round__experiment=self.experiment,
                    round__index__lte=index,
                )
                scores = _scores(judgments, ids)
            reviews = self._reviews(ids, response_ids)
            for row in rows:
                _, kind, prompt, target, pk, response, text, input_, gold, category, origin, parent, ds, ds_name = row
                if kind == "sft" or kind.startswith("skill:"):
                    split = prompt == task_text(text, input_)
                    instruction, input_text = (text, input_) if split else (prompt, "")
                else:
                    instruction, input_text = prompt, ""
                record = {
                    "instruction": instruction,
                    "input": input_text,
                    "output": target,
                    "category": labels.get(pk) or category,
                    "label": gold,
                    "kind": kind,
                }
                if kind in STEP_KINDS:
                    record["label"] = pairs.get((response, "predict"), gold)
                    record["rationale"] = pairs.get((response, "explain"), "")
                if opts.provenance:
                    lineage, seed, _ = lineages.get(pk, ("", parent, None))
                    record["provenance"] = {
                        "dataset": ds_name,
                        "instruction_id": pk,
                        "origin": origin,
                        "lineage": lineage or None,
                        "seed_id": seed,
                        "experiment": experiment,
                        "round": index,
                    }
                if opts.scores and pk in scores:
                    record["scores"] = scores[pk]
                decision = reviews.get(("r", response)) or reviews.get(("i", pk))
                if opts.review and decision is not None:
                    record["review"] = decision
                self.tally.add(record, ds, origin, decision)
                yield record
