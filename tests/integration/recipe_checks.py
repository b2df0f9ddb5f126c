"""Invariants of a finished experiment, recomputed from the rows it wrote (for test_recipes_two_rounds).

Each check reads the database the way an auditor would and recomputes what the engine decided with the
pure code in workers.algorithms (ROUGE-L, seed selection, resampling), so a stage that counted, filtered or
drew wrongly fails here even when its own bookkeeping agrees with itself.
"""

import math

import pytest
from django.db.models import Min

from apps.datasets.models import Instruction
from apps.experiments.machine import rng_for
from apps.experiments.models import Lineage, PoolMember, Round, SeedSelection, StageRun, TaskLabel
from apps.experiments.selectors import pool_instruction_ids
from apps.experiments.stages.review_gate import sample_size
from apps.judging.models import Judgment, Response
from apps.llm.models import LLMCall, LLMCallUse
from apps.llm.selectors import llm_call_finals
from apps.reviews.models import ReviewTask
from apps.training.models import Artifact, TrainingJob
from workers.algorithms.curriculum import select_seeds
from workers.algorithms.resampling import ResamplingConfig, resample_by_task
from workers.algorithms.rouge import rouge_l
from workers.algorithms.task_vocabulary import to_task_category
from workers.llm.prompts import task_text

DISCRIMINATION = Judgment.Kind.DISCRIMINATION


def _pool(run: StageRun, pool: str) -> list[int]:
    return pool_instruction_ids(experiment_id=run.round.experiment_id, pool=pool, round_index=run.round.index)


def _answered(run: StageRun, ids, role: str) -> int:
    rows = Response.objects.filter(round=run.round, role=role, style="", instruction_id__in=ids)
    return rows.values("instruction_id").distinct().count()


def _judgments(run: StageRun):
    return Judgment.objects.filter(round=run.round, kind=DISCRIMINATION)


def _counts_answer(run):
    ids = _pool(run, run.params["pool"])
    done = _answered(run, ids, run.params["role"])
    return len(ids), done, len(ids) - done


def _counts_judge(run):
    ids = _pool(run, run.params.get("pool", "cache"))
    teacher = Response.objects.filter(round=run.round, role="teacher", style="").values("instruction_id")
    both = Response.objects.filter(round=run.round, role="student", style="", instruction_id__in=ids)
    judged = _judgments(run)
    unparsed = [j for j in judged if None in (j.teacher_first_teacher_score, j.student_first_student_score)]
    return both.filter(instruction_id__in=teacher).count(), judged.count(), len(unparsed)


def _counts_verdicts(run):
    judged = _judgments(run)
    return judged.count(), judged.count(), judged.filter(verdict="invalid").count()


def _counts_gate(run):
    tasks = ReviewTask.objects.filter(round=run.round, kind=run.params["review_kind"])
    mode = run.round.experiment.config.get("review", {}).get(run.params["gate"], {"mode": "sample", "fraction": 0.1})
    # A seeded sample of the gate's subjects (plus any a stage marked as needing a person), all decided.
    of = run.state["of"]
    assert sample_size(mode, of) <= tasks.count() <= of, (run.name, mode, of, tasks.count())
    assert not tasks.exclude(status=ReviewTask.Status.DONE).exists(), run.name
    return tasks.count(), tasks.count(), 0


def _counts_generated(run):
    candidates, _ = generated_candidates(run)
    origins = ["expanded"] if run.kind == "expand" else ["hard", "easy"]
    kept = Lineage.objects.filter(round=run.round, origin__in=origins).count()
    assert run.state.get("rejected", 0) == sum(text is not None for text in candidates) - kept, run.name
    return len(run.state["plan"]), kept, sum(text is None for text in candidates)


def _counts_pools(run):
    made = set(Lineage.objects.filter(round=run.round).values_list("instruction_id", flat=True))
    joined = PoolMember.objects.filter(
        experiment_id=run.round.experiment_id, pool="train", joined_round=run.round.index + 1, instruction_id__in=made
    ).count()
    return len(made), joined, len(made) - joined


def _counts_train_pool(run):
    made = set(Lineage.objects.filter(round=run.round, origin="expanded").values_list("instruction_id", flat=True))
    joined = len(made & set(_pool(run, "train")))
    return len(made), joined, len(made) - joined


def _counts_train(run):
    [job] = TrainingJob.objects.filter(round=run.round)
    student = run.round.experiment.config["student"]
    assert (job.status, job.steps) == ("succeeded", student["max_steps"]), (job.status, job.steps, job.error)
    artifact = Artifact.objects.get(training_job=job)
    assert artifact.snapshot_hash == run.round.snapshot.hash and artifact.base_model == student["model"]
    return 1, 1, 0


def _counts_select(run):
    n = SeedSelection.objects.filter(round=run.round).count()
    return n, n, 0


def _counts_classify(run):
    selected = set(SeedSelection.objects.filter(round=run.round).values_list("instruction_id", flat=True))
    labels = TaskLabel.objects.filter(experiment_id=run.round.experiment_id, instruction_id__in=selected)
    if run.params.get("source", "local") == "local":
        done = labels.filter(source__in=["local", "imported"]).count()
        return len(selected), done, len(selected) - done
    floor = float(run.round.experiment.config["params"]["classifier_min_confidence"])
    unsure = {t.instruction_id for t in labels.filter(source="local") if t.confidence < floor}
    done = labels.filter(source="llm", instruction_id__in=unsure).count()
    return len(unsure), done, len(unsure) - done


def _counts_plan(run):
    return len(run.state["plan"]), len(run.state["plan"]), 0


def _counts_style(run):
    ids = _pool(run, "train")
    done = Response.objects.filter(round=run.round, stage=run.name, instruction_id__in=ids).exclude(style="").count()
    return len(ids), done, len(ids) - done


def _counts_rationale(run):
    ids = Instruction.objects.filter(pk__in=_pool(run, "train")).exclude(gold_label="").count()
    done = Response.objects.filter(round=run.round, role="rationale", stage=run.name).count()
    return ids, done, ids - done


def _counts_skills(run):
    n = len(run.round.metrics["skills"])
    return n, n, 0


COUNTS = {
    "answer": _counts_answer,
    "judge": _counts_judge,
    "discriminate": _counts_verdicts,
    "mfd": _counts_verdicts,
    "review_gate": _counts_gate,
    "generate": _counts_generated,
    "expand": _counts_generated,
    "pools": _counts_pools,
    "train_pool": _counts_train_pool,
    "train": _counts_train,
    "select_seeds": _counts_select,
    "classify": _counts_classify,
    "resample": _counts_plan,
    "style": _counts_style,
    "next_alpha": lambda run: (1, 1, 0),
    "rationale": _counts_rationale,
    "skill_eval": _counts_skills,
}


def check_stage_counts(experiment, names: list[str], rounds: int) -> None:
    """Every round ran the recipe's stages in order, each done, with done / total / failed as the rows say."""
    assert list(Round.objects.filter(experiment=experiment).values_list("index", "status")) == [
        (r, "finished") for r in range(1, rounds + 1)
    ]
    for round_ in Round.objects.filter(experiment=experiment):
        runs = list(StageRun.objects.filter(round=round_).order_by("position"))
        assert [(run.name, run.status) for run in runs] == [(name, "done") for name in names], round_.index
        for run in runs:
            assert (run.total, run.done, run.failed) == COUNTS[run.kind](run), (round_.index, run.name)


# --- judging -----------------------------------------------------------------------------------------------
def check_judgments(experiment, *, threshold: float, strict: bool) -> tuple[int, int]:
    """Every judged item has both orders or is invalid; hard/easy follows the hard rule (`gap > t` when
    strict, else `gap >= t`) on the gap recomputed from the four scores. Returns (hard verdicts, verdicts
    whose gap is exactly the threshold), so a caller can tell that the rule's edge was met."""
    hard = edge = 0
    for round_ in Round.objects.filter(experiment=experiment):
        cache = set(pool_instruction_ids(experiment_id=experiment.pk, pool="cache", round_index=round_.index))
        judged = list(Judgment.objects.filter(round=round_, kind=DISCRIMINATION))
        assert {j.instruction_id for j in judged} == cache
        for j in judged:
            tf, sf = j.call_teacher_first, j.call_student_first
            # The two calls show the same two answers, one order each.
            teacher, student = j.teacher_response.text, j.student_response.text
            assert _shows(tf, teacher, student) and _shows(sf, student, teacher)
            scores = (
                j.teacher_first_teacher_score,
                j.teacher_first_student_score,
                j.student_first_student_score,
                j.student_first_teacher_score,
            )
            if None in scores:
                assert j.verdict == "invalid" and j.gap is None
                continue
            t = (scores[0] + scores[3]) / 2
            s = (scores[1] + scores[2]) / 2
            assert j.gap == pytest.approx(t - s)
            is_hard = j.gap > threshold if strict else j.gap >= threshold
            assert j.verdict == ("hard" if is_hard else "easy"), (j.gap, j.verdict)
            hard += is_hard
            edge += j.gap == threshold
    return hard, edge


def _shows(call: LLMCall, first: str, second: str) -> bool:
    """The judge request shows `first` as Assistant 1 and `second` as Assistant 2 (judge_pairwise)."""
    prompt = call.request["messages"][-1]["content"]
    return f"[Answer of Assistant 1]\n{first}\n\n[Answer of Assistant 2]\n{second}\n\nCompare" in prompt


# --- generation and the novelty filter ---------------------------------------------------------------------
def generated_candidates(run: StageRun) -> tuple[list[str | None], list[LLMCall | None]]:
    """The generator's instruction for each plan position, in plan order (None where no usable one came
    back), read from the ledger through the stage's own uses."""
    uses = LLMCallUse.objects.filter(experiment_id=run.round.experiment_id, round=run.round, stage=run.name)
    first = dict(uses.values("item").annotate(first=Min("call_id")).values_list("item", "first"))
    finals = llm_call_finals(sorted(set(first.values())))
    texts, calls = [], []
    for seed, origin, k in run.state["plan"]:
        call_id = first.get(f"r{run.round.index}/{run.name}:{seed}:{origin}{k}")
        call = finals.get(call_id) if call_id else None
        text = (call.parsed or {}).get("text", "").strip() if call and call.status == LLMCall.Status.OK else ""
        texts.append(text or None)
        calls.append(call if text else None)
    return texts, calls


def check_novelty(experiment, stage: str) -> tuple[int, int]:
    """Recompute the filter of each round's generating stage by brute-force ROUGE-L: the round's cache pool
    plus everything the experiment generated before, then each candidate in plan order against that and
    the candidates kept before it. What was kept, its lineage and its nearest score must match. Returns
    (kept, rejected) over all rounds."""
    kept_all = rejected_all = 0
    threshold = float(experiment.config["params"].get("rouge_threshold", 0.7))
    floor = float(experiment.config["params"].get("nearest_floor", 0.5))
    for round_ in Round.objects.filter(experiment=experiment).order_by("index"):
        run = StageRun.objects.get(round=round_, name=stage)
        cache = set(pool_instruction_ids(experiment_id=experiment.pk, pool="cache", round_index=round_.index))
        earlier = Instruction.objects.filter(
            dataset__owner_experiment=experiment, created_in_round__index__lt=round_.index
        )
        pool_ids = cache | set(earlier.values_list("pk", flat=True))
        pool = [task_text(i.text, i.input) for i in Instruction.objects.filter(pk__in=pool_ids).order_by("pk")]
        texts, calls = generated_candidates(run)
        kept, best_of = [], {}
        for text in texts:
            if text is None:
                continue
            best = max((rouge_l(text, other) for other in pool + kept), default=0.0)
            if best <= threshold:
                kept.append(text)
                best_of[text] = best
            else:
                rejected_all += 1
        made = list(
            Instruction.objects.filter(dataset__owner_experiment=experiment, created_in_round=round_).order_by("pk")
        )
        assert [m.text for m in made] == kept, f"round {round_.index}: the engine kept other candidates"
        kept_all += len(kept)
        plan_seeds = {seed for seed, _, _ in run.state["plan"]}
        for item in made:
            lineage = Lineage.objects.get(instruction=item)
            assert lineage.round_id == round_.pk and lineage.seed_id in plan_seeds and item.parent_id == lineage.seed_id
            assert lineage.call_id in {c.pk for c in calls if c is not None}
            best = best_of[item.text]
            if best > min(threshold, floor):
                assert lineage.nearest_score == pytest.approx(best) and lineage.nearest_id is not None
                nearest = Instruction.objects.get(pk=lineage.nearest_id)
                assert rouge_l(item.text, task_text(nearest.text, nearest.input)) == pytest.approx(best)
            else:
                assert lineage.nearest_id is None and lineage.nearest_score is None
    return kept_all, rejected_all


# --- TAPIR's curriculum ------------------------------------------------------------------------------------
def check_tapir_selection(experiment) -> None:
    """Each round's seeds are select_seeds over the valid judgments (instruction order) with α_r, the
    threshold and the stage's seeded draw; the resample plan is resample_by_task over their effective
    labels, int(N × ratio) per present category."""
    params = experiment.config["params"]
    threshold, n = float(params["hard_threshold"]), int(params["seeds_per_round"])
    alpha = float(params["alpha0"])
    for round_ in Round.objects.filter(experiment=experiment).order_by("index"):
        assert round_.params["alpha"] == pytest.approx(alpha)
        valid = Judgment.objects.filter(round=round_, kind=DISCRIMINATION).exclude(verdict="invalid")
        ids, mfd = zip(*valid.order_by("instruction_id").values_list("instruction_id", "gap"), strict=True)
        seed = int(rng_for(experiment.seed, round_.index, "select").integers(2**32))
        picked = select_seeds(list(mfd), n, alpha, hard_threshold=threshold, seed=seed)
        want = {(ids[i], k < picked.hard) for k, i in enumerate(picked.indices)}
        rows = SeedSelection.objects.filter(round=round_)
        assert {(s.instruction_id, s.hard) for s in rows} == want
        assert all(s.alpha == pytest.approx(alpha) and s.hard == (s.mfd > threshold) for s in rows)
        assert picked.hard == min(math.floor(alpha * n + 0.5), sum(d > threshold for d in mfd))

        selected = sorted(s.instruction_id for s in rows)
        labels = {}
        for label in TaskLabel.objects.filter(experiment=experiment, instruction_id__in=selected):
            current = labels.get(label.instruction_id)
            if current is None or TaskLabel.PRIORITY.index(label.source) < TaskLabel.PRIORITY.index(current.source):
                labels[label.instruction_id] = label
        usable = [pk for pk in selected if pk in labels]
        categories = [to_task_category(labels[pk].category) for pk in usable]
        config = ResamplingConfig(
            ratios=dict(params["ratios"]),
            total=params["resample_total"],
            seed=int(rng_for(experiment.seed, round_.index, "resample").integers(2**31)),
        )
        result = resample_by_task(categories, config)
        plan = StageRun.objects.get(round=round_, name="resample").state["plan"]
        assert plan == [[usable[i], categories[i]] for i in result.indices]
        drawn = {}
        for _, category in plan:
            drawn[category] = drawn.get(category, 0) + 1
        total = params["resample_total"]
        assert drawn == {
            c: int(total * r) for c, r in params["ratios"].items() if c in set(categories) and int(total * r)
        }
        alpha = min(1.0, alpha + float(params["delta"]))
        assert round_.params["next_alpha"] == pytest.approx(alpha)
