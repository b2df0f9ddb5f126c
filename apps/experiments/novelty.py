"""An experiment's novelty index, kept in the worker process across batches and rounds.

A generated candidate is kept iff its ROUGE-L against the experiment's novelty pool (the round's cache
pool plus everything the experiment generated) and against the candidates kept before it in its batch is
at most the threshold, as `workers.algorithms.novelty.novelty_filter` decides; each decision carries the
nearest item above min(threshold, nearest_floor), for lineage and the review queue.

That pool only grows (Lion's cache pool keeps what joins it, and generated instructions stay in the
experiment's own dataset), so the index (`GrowingNoveltyIndex`: tokens, element ranks, postings) is built
once per worker process and experiment, and kept instructions join it as they are stored. A batch then
costs its own candidates, not a pass over the pool. The index is trusted while this process did the run's
previous batch; otherwise it is checked against the database (pool size, highest id, reviewers' edits:
cheap aggregates), extended with instructions that joined elsewhere, or rebuilt from the database when it
is missing (after a restart) or does not match. Pool positions follow instruction ids, so a rebuilt index
decides, and names nearest items, exactly as the kept one.
"""

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from apps.datasets.models import Instruction
from apps.experiments.selectors import pool_members
from apps.reviews.models import ReviewTask, ReviewVerdict
from workers.algorithms.novelty import GrowingNoveltyIndex, Nearest, NoveltyConfig, NoveltyDecision
from workers.llm.prompts import task_text

MAX_KEPT = 4  # experiments whose index one worker process keeps (least recently used dropped first)


def novelty_pool(*, experiment_id: int, round_index: int) -> QuerySet[Instruction]:
    """The round's cache pool and everything the experiment generated so far."""
    cache = pool_members(experiment_id=experiment_id, pool="cache", round_index=round_index).values("instruction_id")
    return Instruction.objects.filter(pk__in=cache) | Instruction.objects.filter(
        dataset__owner_experiment_id=experiment_id
    )


def _edits(experiment_id: int) -> int:
    """Reviewers' edits of generated instructions change pool texts in place: a rebuild follows one."""
    return ReviewVerdict.objects.filter(
        task__round__experiment_id=experiment_id,
        task__kind=ReviewTask.Kind.GENERATED,
        decision=ReviewVerdict.Decision.EDIT,
    ).count()


def _texts(rows) -> tuple[list[int], list[str]]:
    ids, texts = [], []
    for pk, text, extra in rows.order_by("pk").values_list("pk", "text", "input").iterator(2000):
        ids.append(pk)
        texts.append(task_text(text, extra))
    return ids, texts


class ExperimentNovelty:
    """The index and, per pool position, the instruction id."""

    def __init__(self, experiment, config: NoveltyConfig, ids: list[int], texts: list[str], edits: int):
        # The creation time tells a new experiment from an old one whose id a database reused.
        self.experiment_id, self.created_at = experiment.pk, experiment.created_at
        self.config, self.edits = config, edits
        self.ids = ids
        self.index = GrowingNoveltyIndex(texts, config)
        self.mark: tuple[int, int] | None = None  # (stage run, cursor) after the last batch this process did

    def filter(self, candidates: Sequence[str]) -> list[NoveltyDecision]:
        return self.index.filter(candidates)

    def commit(self, joined: Sequence[tuple[int, int]]) -> None:
        """(candidate position in the last filter call, its new instruction id): they join the pool."""
        joined = sorted(joined)
        new_ids = [pk for _, pk in joined]
        if new_ids != sorted(new_ids) or (new_ids and self.ids and new_ids[0] <= self.ids[-1]):
            raise ValueError("new pool items must follow the pool in id order")
        self.index.commit([k for k, _ in joined])
        self.ids += new_ids

    def pool_id(self, nearest: Nearest) -> int:
        return self.ids[nearest.index]


_KEPT: OrderedDict[int, ExperimentNovelty] = OrderedDict()


def _fresh(experiment, round_index: int, config: NoveltyConfig) -> ExperimentNovelty:
    edits = _edits(experiment.pk)
    ids, texts = _texts(novelty_pool(experiment_id=experiment.pk, round_index=round_index))
    return ExperimentNovelty(experiment, config, ids, texts, edits)


def _checked(kept: ExperimentNovelty, round_index: int) -> bool:
    """The kept index still equals the database's pool: extend it with items that joined elsewhere."""
    pool = novelty_pool(experiment_id=kept.experiment_id, round_index=round_index)
    if _edits(kept.experiment_id) != kept.edits:
        return False
    last = kept.ids[-1] if kept.ids else 0
    facts = pool.aggregate(n=Count("pk", distinct=True), below=Count("pk", distinct=True, filter=Q(pk__lte=last)))
    if facts["below"] != len(kept.ids):
        return False  # something left, or the index holds rows that never committed
    if facts["n"] > len(kept.ids):
        ids, texts = _texts(pool.filter(pk__gt=last))
        kept.index.extend(texts)
        kept.ids += ids
    return True


def experiment_novelty(*, experiment, round_index: int, config: NoveltyConfig, run_id: int, cursor: int):
    """The experiment's index for a generate batch at (run, cursor), kept, checked or rebuilt."""
    experiment_id = experiment.pk
    kept = _KEPT.get(experiment_id)
    fits = kept is not None and (kept.config, kept.created_at) == (config, experiment.created_at)
    if fits and (kept.mark == (run_id, cursor) or _checked(kept, round_index)):
        _KEPT.move_to_end(experiment_id)
        return kept
    kept = _fresh(experiment, round_index, config)
    _KEPT[experiment_id] = kept
    while len(_KEPT) > MAX_KEPT:
        _KEPT.popitem(last=False)
    return kept


def experiment_novelty_drop(experiment_id: int) -> None:
    """Forget the kept index (a batch failed after changing it, or for tests)."""
    _KEPT.pop(experiment_id, None)


# --- a stage-local filter over candidates known up front (the decide/add API kept for callers) -------------
@dataclass(frozen=True)
class Decision:
    kept: bool
    nearest_source: str | None = None  # "pool" | "candidate"
    nearest_index: int | None = None  # into the pool, or a candidate position
    score: float | None = None


class KeptNovelty:
    """Candidates by position decided in batches (`decide`, then `add` with the kept ones), as one
    novelty_filter call over all of them decides; on the growing index, so nothing is tokenised twice."""

    def __init__(self, pool: Sequence[str], candidates: Sequence[str], threshold: float = 0.7, floor: float = 0.5):
        self.n_pool = len(pool)
        self.candidates = list(candidates)
        self.index = GrowingNoveltyIndex(pool, NoveltyConfig(threshold=threshold, nearest_floor=floor))
        self._joined: list[int] = []  # candidate position of each pool item past the original pool
        self._last: list[int] = []

    def decide(self, positions: Sequence[int]) -> list[Decision]:
        self._last = list(positions)
        out = []
        for decision in self.index.filter([self.candidates[p] for p in positions]):
            near = decision.nearest
            if near is None:
                out.append(Decision(decision.kept))
            elif near.source == "pool" and near.index < self.n_pool:
                out.append(Decision(decision.kept, "pool", near.index, near.score))
            else:
                at = self._joined[near.index - self.n_pool] if near.source == "pool" else positions[near.index]
                out.append(Decision(decision.kept, "candidate", at, near.score))
        return out

    def add(self, positions: Sequence[int]) -> None:
        where = {p: k for k, p in enumerate(self._last)}
        self.index.commit([where[p] for p in positions])
        self._joined += sorted(positions)
