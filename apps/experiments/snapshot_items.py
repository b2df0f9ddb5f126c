"""Training data of the step-by-step and Mixture-of-Skills recipes: which items a round's snapshot holds, the
held-out rows of each skill, and the trainer fields a recipe's train stage adds.

- `rationales` (step-by-step): two items per kept rationale, `predict: <input>` → label and `explain:
  <input>` → rationale (`workers.algorithms.step_by_step.build_pairs`). Kept: the teacher's reply parsed
  and, with `drop_mismatched`, its label agrees with the gold one (`labels_agree`); a reviewer's rejection
  drops it, an edit replaces the rationale. The label is the gold one or the teacher's (`label_source`).
- `skills` (mos): one `skill:<dataset>` item per train-pool instruction: the teacher's answer (with
  `teacher_answers`; a reviewer's rejection drops it, an edit replaces it) or the dataset's recorded answer.
"""

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import orjson

from apps.datasets.models import Instruction
from apps.experiments.models import ExperimentDataset, PoolMember, Round
from apps.experiments.selectors import gate_decisions
from apps.judging.models import Response
from apps.reviews.models import ReviewTask, ReviewVerdict
from workers.algorithms.step_by_step import StepByStepConfig, build_pairs, labels_agree
from workers.llm.prompts import task_text

CHUNK = 2000
SKILL_PREFIX = "skill:"
# mos: each skill's held-out set is a seeded tenth of its usable items, at least 1 and at most 200, never
# more than half of them (ours; the paper evaluates on separate benchmarks).
HELDOUT_FRACTION, HELDOUT_MAX = 0.1, 200


# --- step-by-step ---------------------------------------------------------------------------------------
def student_style(config: dict) -> str:
    """seq2seq or causal pairs: `params.style`, else the student's architecture, else its name (T5-class
    names and builtin:tiny-seq2seq are seq2seq; ours)."""
    style = (config.get("params") or {}).get("style", "auto")
    if style in ("seq2seq", "causal"):
        return style
    student = config.get("student") or {}
    if student.get("architecture") in ("seq2seq", "causal"):
        return student["architecture"]
    model = str(student.get("model") or "").lower()
    return "seq2seq" if ("seq2seq" in model or "t5" in model) else "causal"


def step_by_step_config(config: dict) -> StepByStepConfig:
    """The algorithm's config from the frozen experiment config (its params and the student's style)."""
    from apps.experiments.config.params import algorithm_configs

    params = dict(config.get("params") or {})
    params.setdefault("style", "auto")
    made = algorithm_configs("step_by_step", params, seed=int(config.get("seed") or 0), dataset_names=[])
    return dataclasses.replace(made["step_by_step"], style=student_style(config))


def dataset_kind(config: dict) -> str:
    return (config.get("params") or {}).get("dataset_kind", "generic")


def rationale_input(instruction: Instruction) -> str:
    """The example's input as the student sees it after `predict: ` / `explain: `."""
    return task_text(instruction.text, instruction.input)


def kept_rationales(round_: Round) -> Iterator[tuple[Response, Instruction, bool]]:
    """(rationale, instruction, teacher label agrees with gold) in instruction order; with drop_mismatched,
    only the ones that agree."""
    config = round_.experiment.config
    kind, drop = dataset_kind(config), step_by_step_config(config).drop_mismatched
    qs = Response.objects.filter(round=round_, role=Response.Role.RATIONALE).order_by("instruction_id")
    ids = list(qs.values_list("instruction_id", flat=True))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        instructions = Instruction.objects.in_bulk(chunk)
        for response in qs.filter(instruction_id__in=chunk):
            instruction = instructions[response.instruction_id]
            agrees = labels_agree(kind, response.parsed_label or None, instruction.gold_label)
            if agrees or not drop:
                yield response, instruction, agrees


def rationale_items(round_: Round, params: dict):
    config = step_by_step_config(round_.experiment.config)
    decisions = gate_decisions(round_id=round_.pk, kind=ReviewTask.Kind.RATIONALE)
    for response, instruction, _ in kept_rationales(round_):
        decision = decisions.get(response.pk)
        rationale = response.rationale
        if decision is not None and decision.decision == ReviewVerdict.Decision.REJECT:
            continue
        if decision is not None and decision.decision == ReviewVerdict.Decision.EDIT and decision.edited_text.strip():
            rationale = decision.edited_text.strip()
        label = instruction.gold_label
        if config.label_source == "teacher" and response.parsed_label:
            label = response.parsed_label
        predict, explain = build_pairs(
            rationale_input(instruction),
            label,
            rationale,
            style=config.style,
            causal_separator=config.causal_separator,
        )
        for pair in (predict, explain):
            yield instruction, response, pair.task, pair.source, pair.target


# --- mixture of skills ----------------------------------------------------------------------------------
def skills(experiment) -> list[tuple[str, int]]:
    """(dataset name, dataset id) of the skills in the config's order (the sampler's index order)."""
    names = [d["name"] for d in experiment.config.get("datasets") or []]
    rows = ExperimentDataset.objects.filter(experiment=experiment, role__in=["skill", "target"])
    ids = {name: pk for name, pk in rows.values_list("dataset__name", "dataset_id")}
    return [(name, ids[name]) for name in names if name in ids]


def heldout_size(usable: int) -> int:
    if usable < 2:
        return 0
    return min(usable // 2, HELDOUT_MAX, max(1, round(HELDOUT_FRACTION * usable)))


def _targets(round_: Round, ids: list[int], *, teacher: bool) -> dict[int, tuple[str, Response | None]]:
    """Each instruction's training target: the teacher's answer in this round (reviewed), or the recorded one."""
    if not teacher:
        rows = Instruction.objects.filter(pk__in=ids).exclude(reference_output="").values_list("pk", "reference_output")
        return {pk: (text, None) for pk, text in rows}
    decisions = gate_decisions(round_id=round_.pk, kind=ReviewTask.Kind.ANSWER)
    found = {}
    for response in Response.objects.filter(round=round_, role=Response.Role.TEACHER, style="", instruction_id__in=ids):
        decision, text = decisions.get(response.pk), response.text
        if decision is not None and decision.decision == ReviewVerdict.Decision.REJECT:
            continue
        if decision is not None and decision.decision == ReviewVerdict.Decision.EDIT and decision.edited_text.strip():
            text = decision.edited_text.strip()
        found[response.instruction_id] = (text, response)
    return found


def _members(round_: Round, pool: str, dataset_id: int) -> list[int]:
    qs = PoolMember.objects.filter(experiment_id=round_.experiment_id, pool=pool, joined_round__lte=round_.index)
    qs = qs.filter(instruction__dataset_id=dataset_id)
    return sorted(set(qs.values_list("instruction_id", flat=True)))


def skill_rows(round_: Round, pool: str, *, teacher: bool):
    """(skill name, instruction, response, prompt, target) of a pool, skill by skill in the config's order."""
    for name, dataset_id in skills(round_.experiment):
        ids = _members(round_, pool, dataset_id)
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            instructions = Instruction.objects.in_bulk(chunk)
            targets = _targets(round_, chunk, teacher=teacher)
            for pk in chunk:
                if pk in targets and pk in instructions:
                    target, response = targets[pk]
                    instruction = instructions[pk]
                    yield name, instruction, response, task_text(instruction.text, instruction.input), target


def skill_items(round_: Round, params: dict):
    for name, instruction, response, prompt, target in skill_rows(
        round_, PoolMember.Pool.TRAIN, teacher=bool(params.get("teacher"))
    ):
        yield instruction, response, f"{SKILL_PREFIX}{name}", prompt, target


def heldout_write_jsonl(round_: Round, params: dict, folder: Path) -> Path | None:
    """The skills' held-out rows ({prompt, target, kind, dataset}) for the trainer's per-dataset evaluation;
    None when no skill has any."""
    rows = [
        orjson.dumps({"prompt": prompt, "target": target, "kind": f"{SKILL_PREFIX}{name}", "dataset": name})
        for name, _, _, prompt, target in skill_rows(
            round_, PoolMember.Pool.HELDOUT, teacher=bool(params.get("teacher"))
        )
    ]
    if not rows:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"heldout-round-{round_.pk}.jsonl"
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"\n".join(rows) + b"\n")
    tmp.replace(path)
    return path


# --- hooks for apps.experiments.snapshots and .training ---------------------------------------------------
SOURCES = {"rationales": rationale_items, "skills": skill_items}


def items_for(round_: Round, params: dict):
    source = params.get("source")
    if source not in SOURCES:
        raise ValueError(f"Unknown snapshot source {source!r}; known: train_pool, {', '.join(SOURCES)}")
    yield from SOURCES[source](round_, params)


def review_subjects(round_: Round, kind: str) -> list[tuple[int, int]]:
    """(response id, priority) a gate reviews: the kept rationales, those whose label disagrees with the
    gold one first; or the teacher's answers of the round."""
    if kind == ReviewTask.Kind.RATIONALE:
        return [(response.pk, 0 if agrees else 1) for response, _, agrees in kept_rationales(round_)]
    rows = Response.objects.filter(round=round_, role=Response.Role.TEACHER, style="").order_by("pk")
    return [(pk, 0) for pk in rows.values_list("pk", flat=True)]


def training_fields(round_: Round, stage_params: dict, folder: Path) -> dict:
    """What a recipe's train stage adds to the trainer spec: its method and method_params, and for mos the
    held-out rows as eval_data_path."""
    fields = dict(stage_params.get("training") or {})
    snapshot = stage_params.get("snapshot") or {}
    if snapshot.get("heldout"):
        path = heldout_write_jsonl(round_, snapshot, folder)
        if path is not None:
            fields["eval_data_path"] = str(path)
    return fields
