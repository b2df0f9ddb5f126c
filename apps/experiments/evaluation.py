"""Evaluation after each round: where the evaluate stage goes, how its figures are computed and stored,
and what the console and the API read back.

The maths lives in workers.algorithms.evaluation (never restated here): two-order outcomes with ties as
half a win, the percentile bootstrap, per-category rates, the length-controlled win rate, accuracy and the
regression rule. This module gathers the round's rows into those functions' inputs and keeps the results.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from apps.datasets.models import Instruction
from apps.experiments.models import Evaluation, EvaluationCategory, Experiment, ExperimentDataset, Round, TaskLabel
from apps.experiments.recipes.spec import StageSpec
from apps.judging.models import Judgment, Response
from workers.algorithms import evaluation as maths
from workers.algorithms.step_by_step.arithmetic import ArithmeticSyntaxError, evaluate
from workers.algorithms.step_by_step.inputs import NLI_LABELS
from workers.algorithms.step_by_step.rationales import DATASETS, parse_rationale
from workers.algorithms.task_vocabulary import OTHERS, UnknownTaskLabel, to_task_category

STAGE_NAME = "evaluate"
MIN_DROP = 0.05  # a category regresses when it falls by more than this and the intervals separate


# --- where the stage goes --------------------------------------------------------------------------------
def evaluation_params(config: dict, recipe_module=None) -> dict:
    """The evaluate stage's params for a recipe. step_by_step asks the student for its label with the
    `predict:` prompt it trained on and scores the label; the others ask the plain instruction. A recipe
    module may add or change params with `evaluation_params(config) -> dict`."""
    params: dict = {}
    recipe_params = config.get("params", {}) or {}
    if config.get("recipe") == "step_by_step":
        params = {"prompt": "predict", "dataset_kind": recipe_params.get("dataset_kind") or "generic"}
    hook = getattr(recipe_module, "evaluation_params", None)
    if hook is not None:
        params.update(hook(config) or {})
    return params


def with_evaluation(config: dict, specs: list[StageSpec], recipe_module=None) -> list[StageSpec]:
    """The round's stages with an evaluate stage right after its (last) train stage, when the config has an
    eval set. A round that trains nothing has no new checkpoint to evaluate; a recipe that lists its own
    evaluate stage keeps it."""
    if not config.get("eval_dataset") or any(spec.kind == "evaluate" for spec in specs):
        return specs
    trains = [n for n, spec in enumerate(specs) if spec.kind == "train"]
    if not trains:
        return specs
    names = {spec.name for spec in specs}
    name = STAGE_NAME if STAGE_NAME not in names else f"{STAGE_NAME}_student"
    at = trains[-1] + 1
    return [*specs[:at], StageSpec(name, "evaluate", evaluation_params(config, recipe_module)), *specs[at:]]


# --- the eval set -----------------------------------------------------------------------------------------
def eval_instructions(*, experiment: Experiment) -> QuerySet[Instruction]:
    """The experiment's eval set, lowest ids first (the stage caps it at params.eval.max_items)."""
    datasets = ExperimentDataset.objects.filter(experiment=experiment, role=ExperimentDataset.Role.EVAL)
    return Instruction.objects.filter(dataset_id__in=datasets.values("dataset_id")).order_by("pk")


def instruction_categories(*, experiment_id: int, instructions: list[Instruction]) -> dict[int, str]:
    """Each instruction's task category: the experiment's effective TaskLabel (review > llm > local >
    imported), else the instruction's own task_category through the task vocabulary; Others when neither
    names a category of the vocabulary."""
    ids = [i.pk for i in instructions]
    rank = {source: n for n, source in enumerate(TaskLabel.PRIORITY)}
    labelled: dict[int, tuple[int, str]] = {}
    for pk, source, category in TaskLabel.objects.filter(
        experiment_id=experiment_id, instruction_id__in=ids
    ).values_list("instruction_id", "source", "category"):
        if pk not in labelled or rank[source] < labelled[pk][0]:
            labelled[pk] = (rank[source], category)
    found = {}
    for instruction in instructions:
        label = labelled[instruction.pk][1] if instruction.pk in labelled else instruction.task_category
        try:
            found[instruction.pk] = to_task_category(label) if label else OTHERS
        except UnknownTaskLabel:
            found[instruction.pk] = OTHERS
    return found


def infer_dataset_kind(instructions: list[Instruction]) -> str:
    """How gold labels compare when the recipe does not say: multiple choice when the items list their
    choices, equations when every gold label is arithmetic, NLI classes, else exact match."""
    golds = [i.gold_label for i in instructions if i.gold_label]
    if not golds:
        return ""
    if any((i.metadata or {}).get("choices") for i in instructions if i.gold_label):
        return "cqa"
    if all(label.strip().lower() in NLI_LABELS for label in golds):
        return "anli"
    try:
        for label in golds:
            evaluate(label)
    except ArithmeticSyntaxError:
        return "generic"
    return "svamp"


def predicted_label(text: str, dataset_kind: str, *, choices=None, mode: str = "answer") -> str | None:
    """The label a student's answer gives, read by the project's one rationale parser. `predict` mode: the
    student was asked for the label alone (step-by-step's predict task), so its first line is the answer;
    `answer` mode: a free reply, whose last "the answer is …" clause is the answer."""
    if dataset_kind not in DATASETS or not text or not text.strip():
        return None
    if mode == "predict":
        line = next((line.strip() for line in text.splitlines() if line.strip()), "")
        text = f"The answer is {line}"
    parsed = parse_rationale(dataset_kind, text, choices=list(choices) if choices else None, require_rationale=False)
    return parsed.label if parsed.ok else None


# --- computing and storing ----------------------------------------------------------------------------------
def _order(first: float | None, second: float | None) -> tuple[float, float] | None:
    """One order's (first shown, second shown) scores; None when its reply did not parse."""
    return None if first is None or second is None else (first, second)


def _rate(values, seed) -> maths.RateResult:
    return maths.rate_result(values, seed=seed)


def _regressions(previous: dict, current: dict, metric: str) -> list[dict]:
    def results(per_category: dict) -> dict[str, maths.RateResult]:
        return {name: maths.RateResult(**entry[metric]) for name, entry in per_category.items() if entry.get(metric)}

    return [
        {
            "category": r.category,
            "metric": metric,
            "previous": r.previous.rate,
            "current": r.current.rate,
            "drop": r.drop,
            "previous_ci": [r.previous.ci_low, r.previous.ci_high],
            "current_ci": [r.current.ci_low, r.current.ci_high],
        }
        for r in maths.category_regressions(results(previous), results(current), min_drop=MIN_DROP)
    ]


def evaluation_compute(
    *, experiment: Experiment, round_: Round, instruction_ids: list[int], dataset_kind: str = "", mode: str = "answer"
) -> dict:
    """The round's figures from its rows: evaluation judgments (never discrimination ones), the student's
    answers and the gold labels. Items without a student answer are left out (a generation that never ran
    is not the student's mistake); invalid judgements are counted, never scored."""
    seed = int(experiment.seed) & 0xFFFFFFFF
    instructions = list(Instruction.objects.filter(pk__in=instruction_ids).order_by("pk"))
    categories = instruction_categories(experiment_id=experiment.pk, instructions=instructions)
    students = {
        r.instruction_id: r
        for r in Response.objects.filter(round=round_, role="student", style="", instruction_id__in=instruction_ids)
    }
    judgments = list(
        Judgment.objects.filter(round=round_, kind=Judgment.Kind.EVALUATION, instruction_id__in=instruction_ids)
        .select_related("teacher_response", "student_response")
        .order_by("instruction_id")
    )
    report = None
    if judgments:
        report = maths.win_rate_report(
            [
                (
                    _order(j.teacher_first_teacher_score, j.teacher_first_student_score),
                    _order(j.student_first_student_score, j.student_first_teacher_score),
                )
                for j in judgments
            ],
            [categories[j.instruction_id] for j in judgments],
            [len(j.student_response.text) - len(j.teacher_response.text) for j in judgments],
            seed=seed,
        )

    labelled = [i for i in instructions if i.gold_label and i.pk in students]
    kind = dataset_kind or infer_dataset_kind(labelled)
    accuracy, correct_by = None, {}
    if labelled and kind:
        predictions = [
            predicted_label(students[i.pk].text, kind, choices=(i.metadata or {}).get("choices"), mode=mode)
            for i in labelled
        ]
        accuracy = maths.accuracy(predictions, [i.gold_label for i in labelled], kind)
        for instruction, right in zip(labelled, accuracy.per_item, strict=True):
            correct_by.setdefault(categories[instruction.pk], []).append(float(right))

    per_category: dict[str, dict] = {}
    for name, result in (report.by_category if report else {}).items():
        per_category.setdefault(name, {})["win_rate"] = result.to_dict()
    for name, values in sorted(correct_by.items()):
        per_category.setdefault(name, {})["accuracy"] = _rate(values, maths.category_seed(seed, name)).to_dict()
    accuracy_rate = _rate([float(x) for x in accuracy.per_item], seed) if accuracy else None
    return {
        "n": len(students),
        "report": report,
        "accuracy": accuracy,
        "accuracy_rate": accuracy_rate,
        "dataset_kind": kind if accuracy else "",
        "per_category": dict(sorted(per_category.items())),
    }


@transaction.atomic
def evaluation_record(*, experiment: Experiment, round_: Round, stage: str, checkpoint: str, figures: dict):
    """Store one evaluation (once per round and stage; recording again replaces it), its category rows,
    the categories that fell since the previous round's evaluation, and a summary in round.metrics."""
    report, accuracy, rate = figures["report"], figures["accuracy"], figures["accuracy_rate"]
    previous = (
        Evaluation.objects.filter(experiment=experiment, round__index__lt=round_.index)
        .order_by("-round__index", "-id")
        .first()
    )
    regressions = []
    if previous is not None:
        for metric in ("win_rate", "accuracy"):
            regressions += _regressions(previous.per_category, figures["per_category"], metric)
    counts = report.to_dict()["counts"] if report else {"win": 0, "tie": 0, "loss": 0, "invalid": 0}
    lc = report.length_controlled if report else None
    evaluation, _ = Evaluation.objects.update_or_create(
        round=round_,
        stage=stage,
        defaults=dict(
            experiment=experiment,
            checkpoint=checkpoint,
            n=figures["n"],
            judged=report.overall.n if report else 0,
            invalid=counts["invalid"],
            wins=counts["win"],
            ties=counts["tie"],
            losses=counts["loss"],
            win_rate=report.overall.rate if report else None,
            ci_low=report.overall.ci_low if report else None,
            ci_high=report.overall.ci_high if report else None,
            lc_win_rate=lc.win_rate if lc else None,
            dataset_kind=figures["dataset_kind"],
            labelled=accuracy.n if accuracy else 0,
            correct=accuracy.correct if accuracy else 0,
            accuracy=accuracy.accuracy if accuracy else None,
            accuracy_ci_low=rate.ci_low if rate else None,
            accuracy_ci_high=rate.ci_high if rate else None,
            per_category=figures["per_category"],
            report=report.to_dict() if report else {},
            regressions=regressions,
        ),
    )
    fallen = {r["category"] for r in regressions}
    EvaluationCategory.objects.filter(evaluation=evaluation).delete()
    EvaluationCategory.objects.bulk_create(
        [
            EvaluationCategory(
                evaluation=evaluation,
                category=name,
                n=(entry.get("win_rate") or {}).get("n", 0),
                invalid=(entry.get("win_rate") or {}).get("invalid", 0),
                win_rate=(entry.get("win_rate") or {}).get("rate"),
                ci_low=(entry.get("win_rate") or {}).get("ci_low"),
                ci_high=(entry.get("win_rate") or {}).get("ci_high"),
                labelled=(entry.get("accuracy") or {}).get("n", 0),
                accuracy=(entry.get("accuracy") or {}).get("rate"),
                regressed=name in fallen,
            )
            for name, entry in figures["per_category"].items()
        ]
    )
    round_.metrics = {**(round_.metrics or {}), "evaluation": evaluation_summary(evaluation)}
    round_.save(update_fields=["metrics", "updated_at"])
    return evaluation


# --- reads ----------------------------------------------------------------------------------------------------
def evaluation_summary(evaluation: Evaluation) -> dict:
    """One evaluation as JSON: the overall figures, counts, accuracy and regression alerts."""
    return {
        "round": evaluation.round.index,
        "stage": evaluation.stage,
        "checkpoint": evaluation.checkpoint,
        "n": evaluation.n,
        "win_rate": evaluation.win_rate,
        "ci": [evaluation.ci_low, evaluation.ci_high] if evaluation.win_rate is not None else None,
        "lc_win_rate": evaluation.lc_win_rate,
        "counts": {
            "judged": evaluation.judged,
            "win": evaluation.wins,
            "tie": evaluation.ties,
            "loss": evaluation.losses,
            "invalid": evaluation.invalid,
        },
        "accuracy": evaluation.accuracy,
        "accuracy_ci": [evaluation.accuracy_ci_low, evaluation.accuracy_ci_high]
        if evaluation.accuracy is not None
        else None,
        "labelled": evaluation.labelled,
        "correct": evaluation.correct,
        "dataset_kind": evaluation.dataset_kind,
        "regressions": evaluation.regressions,
    }


def experiment_evaluations(*, experiment_id: int) -> dict:
    """What the console's charts read: each round's evaluation (overall, with intervals, LC beside raw,
    accuracy, alerts), each round's categories, and each category across rounds."""
    evaluations = list(
        Evaluation.objects.filter(experiment_id=experiment_id)
        .select_related("round")
        .prefetch_related("categories")
        .order_by("round__index", "id")
    )
    rounds, series = [], {}
    for evaluation in evaluations:
        rows = [
            {
                "category": c.category,
                "n": c.n,
                "invalid": c.invalid,
                "win_rate": c.win_rate,
                "ci": [c.ci_low, c.ci_high] if c.win_rate is not None else None,
                "labelled": c.labelled,
                "accuracy": c.accuracy,
                "regressed": c.regressed,
            }
            for c in evaluation.categories.all()
        ]
        rounds.append({**evaluation_summary(evaluation), "categories": rows})
        for row in rows:
            series.setdefault(row["category"], []).append({"round": evaluation.round.index, **row})
    return {"experiment": experiment_id, "rounds": rounds, "categories": sorted(series), "by_category": series}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def evaluation_line(evaluation: Evaluation) -> str:
    """One line for run_experiment: the round's win rate with its interval and the LC rate, accuracy, alerts."""
    parts = []
    if evaluation.win_rate is not None:
        invalid = f", {evaluation.invalid} invalid" if evaluation.invalid else ""
        parts.append(
            f"win rate {_pct(evaluation.win_rate)} [{_pct(evaluation.ci_low)}, {_pct(evaluation.ci_high)}] "
            f"(LC {_pct(evaluation.lc_win_rate)}; {evaluation.wins}W/{evaluation.ties}T/{evaluation.losses}L"
            f"{invalid})"
        )
    if evaluation.accuracy is not None:
        parts.append(
            f"accuracy {_pct(evaluation.accuracy)} [{_pct(evaluation.accuracy_ci_low)}, "
            f"{_pct(evaluation.accuracy_ci_high)}] ({evaluation.correct}/{evaluation.labelled}, "
            f"{evaluation.dataset_kind})"
        )
    if not parts:
        parts.append("nothing measured (no judge and no gold labels)")
    for alert in evaluation.regressions:
        parts.append(
            f"REGRESSION {alert['category']} {alert['metric'].replace('_', ' ')} "
            f"{_pct(alert['previous'])} → {_pct(alert['current'])}"
        )
    return f"Round {evaluation.round.index} evaluation on {evaluation.n} items: " + "; ".join(parts)
