"""TAPIR end to end through the real gateway runner against the local test server (real sockets): served
student, teacher, judge, generator and LLM classifier, the local task classifier as an offline endpoint;
training reported done as a gpu worker would."""

import itertools

import pytest

from apps.datasets.models import Instruction
from apps.experiments.models import Experiment, Lineage, Round, SeedSelection, Snapshot, StageRun, TaskLabel
from apps.experiments.selectors import pool_instruction_ids
from apps.experiments.services import experiment_create, experiment_start
from apps.judging.models import Judgment, Response
from apps.llm.models import LLMCall, LLMCallUse, LLMEndpoint
from apps.reviews.models import ReviewTask
from tests.apps.experiments.conftest import SEED_TEXTS, drive
from tests.factories import DatasetFactory, InstructionFactory
from workers.algorithms.resampling import ResamplingConfig, resample_by_task
from workers.algorithms.rouge import rouge_l
from workers.algorithms.task_vocabulary import response_style
from workers.llm.prompts import task_text

pytestmark = pytest.mark.django_db
# Seeds the local classifier (MiniLM + a head on MT-Bench's questions) places with some confidence, beside
# the engine tests' general ones; the last carries an imported category (MT-Bench's "coding").
TASKS = [
    "Solve for x: 5x - 3 = 2x + 9, and show each step.",
    "A train travels 120 km in 1.5 hours. What is its average speed in km per hour?",
    "Write a Python function that checks whether a string is a palindrome.",
    "Implement binary search in C++ and explain its time complexity.",
    "If all bloops are razzies and all razzies are lazzies, are all bloops lazzies? Explain.",
    "Pretend you are a pirate captain and greet your new crew.",
    "Extract the names and dates from this paragraph and return them as JSON.",
]
IMPORTED = ("Write a shell script that renames every .txt file in a folder to .md.", "coding")
E = Experiment.Status
_names = itertools.count()

STAGES = [
    "student_seeds",
    "teacher_seeds",
    "judge",
    "mfd",
    "gate_verdicts",
    "select",
    "classify",
    "classify_llm",
    "gate_labels",
    "resample",
    "expand",
    "gate_generated",
    "train_pool",
    "teacher_train",
    "style",
    "gate_rewrites",
    "train",
    "curriculum",
]
RATIOS = {
    "Math": 0.2,
    "Reasoning": 0.1,
    "Code Generation": 0.2,
    "Writing": 0.2,
    "Others": 0.1,
    "Roleplay": 0.1,
    "Complex Format": 0.1,
}


def tapir_dataset():
    dataset = DatasetFactory(name=f"tapir-seeds-{next(_names)}")
    for text in SEED_TEXTS + TASKS:
        InstructionFactory(dataset=dataset, text=text)
    InstructionFactory(dataset=dataset, text=IMPORTED[0], task_category=IMPORTED[1])
    dataset.size = len(SEED_TEXTS) + len(TASKS) + 1
    dataset.save(update_fields=["size"])
    return dataset


def tapir_config(server, dataset, **overrides) -> dict:
    name = overrides.pop("name", f"tapir-{next(_names)}")

    def endpoint(model):
        return {"base_url": server.url, "model": model, "name": f"{name}-{model}", "max_concurrency": 8}

    config = {
        "name": name,
        "recipe": "tapir",
        "dataset": dataset.name,
        "endpoints": {
            "teacher": endpoint("teacher-big"),
            "judge": endpoint("judge-strict"),
            "generator": endpoint("generator-tapir"),
            "classifier": endpoint("classifier-tapir"),
            "student": endpoint("student-small"),
        },
        "student": {"model": "builtin:tiny"},
        "params": {
            "rounds": 2,
            "alpha0": 0.3,
            "delta": 0.2,
            "seeds_per_round": 12,
            "expansions_per_seed": 2,
            "ratios": RATIOS,
            "resample_total": 20,
            "classifier_min_confidence": 0.45,
            "batch_size": 5,
        },
        "review": {"hard_verdicts": "sample:0.25", "task_labels": "none", "generated": "all", "rewrites": "sample:0.2"},
        "seed": 4321,
    }
    for key, value in overrides.items():
        config[key] = (
            {**config[key], **value} if isinstance(value, dict) and isinstance(config.get(key), dict) else value
        )
    return config


def _run(server, dataset, **overrides) -> Experiment:
    experiment = experiment_create(config=tapir_config(server, dataset, **overrides))
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    return drive(experiment)


def _effective(experiment, ids) -> dict[int, TaskLabel]:
    out = {}
    for label in TaskLabel.objects.filter(experiment=experiment, instruction_id__in=ids):
        current = out.get(label.instruction_id)
        if current is None or TaskLabel.PRIORITY.index(label.source) < TaskLabel.PRIORITY.index(current.source):
            out[label.instruction_id] = label
    return out


def _check_selection(round_, alpha):
    judgments = {j.instruction_id: j for j in Judgment.objects.filter(round=round_)}
    for j in judgments.values():
        if j.verdict == "invalid":
            assert j.gap is None
        else:  # MFD = teacher - student over both orders; hard iff MFD > threshold (the default rule)
            t = (j.teacher_first_teacher_score + j.student_first_teacher_score) / 2
            s = (j.teacher_first_student_score + j.student_first_student_score) / 2
            assert j.gap == pytest.approx(t - s) and j.verdict == ("hard" if j.gap > 1.0 else "easy")
    hard_available = sum(j.verdict == "hard" for j in judgments.values())
    easy_available = sum(j.verdict == "easy" for j in judgments.values())
    picks = list(SeedSelection.objects.filter(round=round_))
    n = round_.experiment.config["params"]["seeds_per_round"]
    want_hard = round(alpha * n)
    hard = [p for p in picks if p.hard]
    assert len(hard) == min(want_hard, hard_available)
    assert len(picks) - len(hard) == min(n - want_hard, easy_available)
    for p in picks:
        assert p.alpha == pytest.approx(alpha) and p.mfd == judgments[p.instruction_id].gap
        assert p.hard == (p.mfd > 1.0)
    selection = round_.metrics["selection"]
    assert selection["hard_short"] == want_hard - len(hard) and selection["easy_short"] == n - want_hard - (
        len(picks) - len(hard)
    )
    return picks


def test_a_tapir_experiment_runs_two_rounds_and_keeps_its_invariants(llm_server):
    dataset = tapir_dataset()
    experiment = _run(llm_server, dataset)
    assert experiment.status == E.FINISHED, experiment.status_reason
    rounds = list(Round.objects.filter(experiment=experiment).order_by("index"))
    assert [r.status for r in rounds] == ["finished", "finished"]
    for round_ in rounds:
        runs = list(StageRun.objects.filter(round=round_).order_by("position").values_list("name", "status"))
        assert runs == [(name, "done") for name in STAGES]
    seeds = set(Instruction.objects.filter(dataset=dataset).values_list("pk", flat=True))
    local = LLMEndpoint.objects.get(name="offline:task-classifier")
    assert local.backend == LLMEndpoint.Backend.LOCAL_CLASSIFIER
    first, second = rounds
    imported_seed = Instruction.objects.get(dataset=dataset, text=IMPORTED[0]).pk
    sources, styles = set(), set()

    # The curriculum: α_1 = alpha0, α_2 = α_1 + δ, each round's seeds drawn with its α.
    assert first.params["alpha"] == pytest.approx(0.3) and first.params["next_alpha"] == pytest.approx(0.5)
    assert second.params["alpha"] == pytest.approx(0.5) and second.params["next_alpha"] == pytest.approx(0.7)
    for round_, alpha in ((first, 0.3), (second, 0.5)):
        assert set(pool_instruction_ids(experiment_id=experiment.pk, pool="cache", round_index=round_.index)) == seeds
        assert {j.instruction_id for j in Judgment.objects.filter(round=round_)} == seeds
        picks = _check_selection(round_, alpha)
        selected = [p.instruction_id for p in picks]

        # Classification: every selected seed has a local label with its confidence; exactly those below
        # the floor went on to the LLM classifier.
        labels = TaskLabel.objects.filter(experiment=experiment, instruction_id__in=selected)
        local_labels = {t.instruction_id: t for t in labels if t.source == "local"}
        imported = {t.instruction_id: t for t in labels if t.source == "imported"}
        assert set(local_labels) == set(selected) - {imported_seed} and set(imported) <= {imported_seed}
        assert all(t.category == "Code Generation" and t.call is None for t in imported.values())
        assert all(0.0 < t.confidence <= 1.0 and t.call.endpoint_id == local.pk for t in local_labels.values())
        unsure = {pk for pk, t in local_labels.items() if t.confidence < 0.45}
        asked = {t.instruction_id for t in labels if t.source == "llm"}
        assert asked == unsure
        sources.update(t.source for t in labels)
        effective = _effective(experiment, selected)

        # Resampling: the expand plan holds int(N × ratio) seeds of each category present (resample_by_task).
        plan = StageRun.objects.get(round=round_, name="resample").state["plan"]
        ids = sorted(selected)
        expected = resample_by_task([effective[pk].category for pk in ids], ResamplingConfig(ratios=RATIOS, total=20))
        counts = {}
        for _, category in plan:
            counts[category] = counts.get(category, 0) + 1
        present = {effective[pk].category for pk in ids}
        assert counts == {c: int(20 * r) for c, r in RATIOS.items() if c in present and int(20 * r)}
        assert counts == {c: d.drawn for c, d in expected.categories.items() if d.drawn}
        assert round_.metrics["resampling"]["empty"] == expected.empty

        # Expansions: two per plan entry, novel against the seed pool and everything generated before them.
        expand = StageRun.objects.get(round=round_, name="expand")
        assert expand.total == 2 * len(plan)
        made = list(Instruction.objects.filter(dataset__owner_experiment=experiment, created_in_round=round_))
        assert made and expand.state["rejected"] + len(made) + expand.failed == expand.total
        generated = list(Instruction.objects.filter(dataset__owner_experiment=experiment).order_by("pk"))
        seed_texts = [task_text(i.text, i.input) for i in Instruction.objects.filter(pk__in=seeds)]
        for item in made:
            earlier = [g.text for g in generated if g.pk < item.pk]
            assert max(rouge_l(item.text, other) for other in seed_texts + earlier) <= 0.7
            lineage = Lineage.objects.get(instruction=item)
            assert lineage.origin == "expanded" and lineage.round_id == round_.pk and item.origin == "generated"
            assert lineage.seed_id in {seed for seed, _ in plan}
            assert item.task_category == dict(map(tuple, plan))[lineage.seed_id]

        # Styles follow the task category, and the snapshot trains on exactly the styled answers.
        train = set(pool_instruction_ids(experiment_id=experiment.pk, pool="train", round_index=round_.index))
        assert train == set(selected) | {i.pk for i in made}
        styled = {r.instruction_id: r for r in Response.objects.filter(round=round_, stage="style")}
        assert set(styled) == train
        for pk, response in styled.items():
            category = effective[pk].category if pk in effective else Instruction.objects.get(pk=pk).task_category
            assert response.style == response_style(category) and response.role == "rewrite"
            styles.add(response.style)
            assert response.template_id == f"rewrite_{response.style}" and response.rewrites.style == ""
            if category in ("Math", "Reasoning"):
                assert response.style == "chain_of_thought" and "Final answer:" in response.text
            if category in ("Code Generation", "Code Debug"):
                assert response.style == "commented_code" and "```python" in response.text
        snapshot = Snapshot.objects.get(round=round_)
        assert {i.instruction_id: i.target for i in snapshot.items.all()} == {pk: r.text for pk, r in styled.items()}
        assert sum(snapshot.counts["by_category"].values()) == snapshot.size == len(train)
        # The gates the config asked for: every expansion reviewed, no label task (none was unsure).
        assert ReviewTask.objects.filter(round=round_, kind="generated").count() == len(made)
        task_labels = ReviewTask.objects.filter(round=round_, kind="task_label").count()
        assert task_labels == 0
    # The run met the paths it checks: both classifiers, all three styles.
    assert {"local", "llm"} <= sources, sources
    assert styles == {"chain_of_thought", "commented_code", "detailed"}, styles
    assert llm_server.stats().requests == LLMCall.objects.exclude(status="pending").exclude(endpoint=local).count()


def test_the_same_config_over_the_same_ledger_pays_nothing_and_gives_the_same_snapshots(llm_server):
    dataset = tapir_dataset()
    first = _run(llm_server, dataset, name="tapir-first")
    assert first.status == E.FINISHED, first.status_reason
    calls, requests = LLMCall.objects.count(), llm_server.stats().requests
    hashes = list(
        Snapshot.objects.filter(round__experiment=first).order_by("round__index").values_list("hash", flat=True)
    )
    again = _run(llm_server, dataset, name="tapir-again")
    assert again.status == E.FINISHED, again.status_reason
    assert LLMCall.objects.count() == calls and llm_server.stats().requests == requests
    assert not LLMCallUse.objects.filter(experiment=again, paid=True).exists()
    assert LLMCallUse.objects.filter(experiment=again).count() == LLMCallUse.objects.filter(experiment=first).count()
    redo = list(
        Snapshot.objects.filter(round__experiment=again).order_by("round__index").values_list("hash", flat=True)
    )
    assert redo == hashes and len(hashes) == 2


def test_without_an_llm_classifier_unsure_labels_go_to_review_and_answers_can_be_asked_styled(llm_server):
    """One round with the local classifier only, hard at exactly the threshold (`gap >= threshold`) and
    styled answers asked for directly (`style: answer`)."""
    dataset = tapir_dataset()
    config = tapir_config(
        llm_server,
        dataset,
        params={
            "rounds": 1,
            "hard_rule": "gap >= threshold",
            "style": "answer",
            "classifier_min_confidence": 0.5,
            # Twice the pool at one half: every seed is selected, and both sides report their shortfall.
            "seeds_per_round": 40,
            "alpha0": 0.5,
        },
    )
    config["endpoints"]["classifier"] = "offline:task-classifier"
    experiment = experiment_create(config=config)
    assert experiment.classifier_endpoint.backend == LLMEndpoint.Backend.LOCAL_CLASSIFIER
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    experiment = drive(experiment)
    assert experiment.status == E.FINISHED, experiment.status_reason
    [round_] = Round.objects.filter(experiment=experiment)
    names = list(StageRun.objects.filter(round=round_).order_by("position").values_list("name", flat=True))
    assert "teacher_train" not in names  # nothing to rewrite
    for j in Judgment.objects.filter(round=round_).exclude(verdict="invalid"):
        assert j.verdict == ("hard" if j.gap >= 1.0 else "easy")
    for p in SeedSelection.objects.filter(round=round_):
        assert p.hard == (p.mfd >= 1.0)
    selected = set(SeedSelection.objects.filter(round=round_).values_list("instruction_id", flat=True))
    assert selected == set(Instruction.objects.filter(dataset=dataset).values_list("pk", flat=True))
    hard = SeedSelection.objects.filter(round=round_, hard=True).count()
    selection = round_.metrics["selection"]
    assert (selection["hard_short"], selection["easy_short"]) == (20 - hard, 20 - (len(selected) - hard))
    labels = TaskLabel.objects.filter(experiment=experiment, instruction_id__in=selected)
    # The seed with an imported category asks no classifier; the others are the local classifier's.
    [imported] = [t for t in labels if t.source == "imported"]
    assert imported.instruction.text == IMPORTED[0] and imported.category == "Code Generation"
    assert {t.source for t in labels if t.pk != imported.pk} == {"local"}
    unsure = {t.pk for t in labels if t.source == "local" and t.confidence < 0.5}
    assert unsure and len(unsure) < len(labels) - 1, "the floor should leave some labels sure and some unsure"
    # task_labels is "none", yet each unsure label got a review task (auto-approve accepted it).
    tasks = set(ReviewTask.objects.filter(round=round_, kind="task_label").values_list("subject_id", flat=True))
    assert tasks == unsure
    assert round_.metrics["classification"]["to_review"] == len(unsure)
    styled = Response.objects.filter(round=round_, stage="style")
    assert styled.count() == Snapshot.objects.get(round=round_).size > 0
    for response in styled:
        assert response.role == "teacher" and response.template_id == f"answer_{response.style}"
