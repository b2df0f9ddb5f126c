"""TAPIR (Yue et al., 2024): task-aware curriculum planning, round by round.

Round r: the student and the teacher answer the seed pool, the judge compares them in both orders and each
seed gets its Model Fitting Difficulty (teacher − student score); a reviewer gate over the hard/easy
verdicts; n seeds are drawn with a hard share α_r (α_0 = alpha0); they are classified into the task
vocabulary (local classifier, then the LLM classifier for its low-confidence items) behind a task_labels
gate, resampled to the task ratios, and expanded by the generator at similar difficulty (novelty-filtered
against the seed pool and everything generated) behind the generated gate; the teacher answers the
selected and expanded items in their task's style (or rewrites its plain answers) behind the rewrites
gate; the student trains on those styled answers; α_{r+1} = min(1, α_r + δ).

The seed pool (capped at params.max_items, lowest ids first) is the engine's cache pool of every round;
each round's train pool holds its selected seeds and accepted expansions.
"""

from apps.datasets.models import Instruction
from apps.experiments.models import Experiment, ExperimentDataset, PoolMember, Round, TaskLabel
from apps.experiments.recipes.spec import StageSpec
from apps.experiments.selectors import gate_decisions, pool_instruction_ids
from apps.judging.models import Response
from apps.reviews.models import ReviewTask, ReviewVerdict
from workers.llm.prompts import task_text


def stages(config: dict, round_index: int) -> list[StageSpec]:
    style = (config.get("params") or {}).get("style", "rewrite")
    plain = [StageSpec("teacher_train", "answer", {"role": "teacher", "pool": "train"})] if style == "rewrite" else []
    return [
        StageSpec("student_seeds", "answer", {"role": "student", "pool": "cache"}),
        StageSpec("teacher_seeds", "answer", {"role": "teacher", "pool": "cache"}),
        StageSpec("judge", "judge", {"pool": "cache"}),
        StageSpec("mfd", "mfd"),
        StageSpec("gate_verdicts", "review_gate", {"gate": "hard_verdicts", "review_kind": "verdict"}),
        StageSpec("select", "select_seeds"),
        StageSpec("classify", "classify", {"source": "local"}),
        StageSpec("classify_llm", "classify", {"source": "llm"}),
        StageSpec("gate_labels", "review_gate", {"gate": "task_labels", "review_kind": "task_label"}),
        StageSpec("resample", "resample"),
        StageSpec("expand", "expand"),
        StageSpec("gate_generated", "review_gate", {"gate": "generated", "review_kind": "generated"}),
        StageSpec("train_pool", "train_pool"),
        # The seeds' plain answers are in the ledger from teacher_seeds; only expansions cost a call here.
        *plain,
        StageSpec("style", "style", {"mode": style}),
        StageSpec("gate_rewrites", "review_gate", {"gate": "rewrites", "review_kind": "rewrite"}),
        StageSpec("train", "train", {"snapshot": {"source": "tapir"}}),
        StageSpec("curriculum", "next_alpha"),
    ]


def setup(experiment: Experiment) -> None:
    """The seed pool (capped at params.max_items, lowest ids first) becomes the cache pool of every round."""
    if PoolMember.objects.filter(experiment=experiment).exists():
        return
    seed = ExperimentDataset.objects.filter(experiment=experiment, role="seed").order_by("position").first()
    dataset_id = seed.dataset_id if seed else experiment.dataset_id
    cap = experiment.config.get("params", {}).get("max_items")
    qs = Instruction.objects.filter(dataset_id=dataset_id).order_by("pk").values_list("pk", flat=True)
    ids = list(qs[: int(cap)]) if cap else qs.iterator(10_000)
    batch = []
    for pk in ids:
        batch.append(PoolMember(experiment=experiment, pool=PoolMember.Pool.CACHE, instruction_id=pk, joined_round=1))
        if len(batch) >= 10_000:
            PoolMember.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    PoolMember.objects.bulk_create(batch, ignore_conflicts=True)


def snapshot_items(round_: Round, params: dict):
    """(instruction, response, kind, prompt, target) in instruction order: the styled answers to the round's
    train pool (selected seeds and accepted expansions); a rejected rewrite leaves its item out, an edited
    one trains on the reviewer's text."""
    decisions = gate_decisions(round_id=round_.pk, kind=ReviewTask.Kind.REWRITE)
    ids = pool_instruction_ids(experiment_id=round_.experiment_id, pool="train", round_index=round_.index)
    for start in range(0, len(ids), 2000):
        chunk = ids[start : start + 2000]
        instructions = Instruction.objects.in_bulk(chunk)
        styled = {
            r.instruction_id: r
            for r in Response.objects.filter(
                round=round_, instruction_id__in=chunk, role__in=[Response.Role.REWRITE, Response.Role.TEACHER]
            ).exclude(style="")
        }
        categories = _labels(round_, chunk)
        for pk in chunk:
            response, instruction = styled.get(pk), instructions.get(pk)
            if response is None or instruction is None:
                continue
            decision = decisions.get(response.pk)
            if decision is not None and decision.decision == ReviewVerdict.Decision.REJECT:
                continue
            target = response.text
            if (
                decision is not None
                and decision.decision == ReviewVerdict.Decision.EDIT
                and decision.edited_text.strip()
            ):
                target = decision.edited_text.strip()
            # Counted by the experiment's label (never saved: the instruction row keeps its own category).
            instruction.task_category = categories.get(pk) or instruction.task_category
            yield instruction, response, "sft", task_text(instruction.text, instruction.input), target


def _labels(round_: Round, ids: list[int]) -> dict[int, str]:
    rank = {source: n for n, source in enumerate(TaskLabel.PRIORITY)}
    best: dict[int, tuple[int, str]] = {}
    for pk, source, category in TaskLabel.objects.filter(
        experiment_id=round_.experiment_id, instruction_id__in=ids
    ).values_list("instruction_id", "source", "category"):
        if pk not in best or rank[source] < best[pk][0]:
            best[pk] = (rank[source], category)
    return {pk: category for pk, (_, category) in best.items()}
