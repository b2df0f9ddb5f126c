"""Distilling step-by-step end to end through the real gateway runner against the local test server (real
sockets). The recipe is one pass (rationales → gate → train), so one round is what there is to test; training
is reported done as a gpu worker would.

The teacher is the test server's `rationale-svamp`: it answers each word problem with the sum of its first
two numbers, so the gold equations below decide which replies agree, and a problem without two numbers gets
a reply the rationale contract refuses every time."""

import itertools
import json
from pathlib import Path

import pytest

from apps.core.roles import Role
from apps.datasets.models import Instruction
from apps.experiments.models import Experiment, PoolMember, Round, Snapshot, StageRun
from apps.experiments.services import experiment_approve_and_train, experiment_create, experiment_start
from apps.judging.models import Response
from apps.llm.models import LLMCall, LLMCallUse
from apps.llm.selectors import llm_call_finals
from apps.reviews.models import ReviewTask
from apps.reviews.services import review_decide
from apps.training.models import TrainingJob
from tests.apps.experiments.conftest import drive
from tests.factories import DatasetFactory, InstructionFactory, UserFactory
from workers.algorithms.step_by_step import labels_agree, parse_rationale

pytestmark = pytest.mark.django_db
E = Experiment.Status
_names = itertools.count()

# (problem, gold equation): the teacher's "(a + b)" agrees with the first, fourth and sixth.
PROBLEMS = [
    ("Tom has 3 apples and buys 4 more.\nHow many apples does he have now?", "( 3.0 + 4.0 )"),
    ("Ann had 9 sweets and ate 2 of them.\nHow many sweets are left?", "( 9.0 - 2.0 )"),
    ("A shop sold some apples in the morning.\nHow many apples did it sell?", "( 8.0 )"),  # no two numbers
    ("A class has 12 girls and 15 boys.\nHow many children are in the class?", "( 12.0 + 15.0 )"),
    ("Each box holds 6 pens and there are 5 boxes.\nHow many pens are there?", "( 6.0 * 5.0 )"),
    ("Sam ran 7 km on Monday and 8 km on Tuesday.\nHow far did he run?", "( 7.0 + 8.0 )"),
]
UNLABELLED = "Mia read 10 pages on Friday and 5 on Saturday.\nHow many pages did she read?"


@pytest.fixture
def problems():
    dataset = DatasetFactory(name=f"svamp-{next(_names)}")
    for text, gold in PROBLEMS:
        InstructionFactory(dataset=dataset, text=text, gold_label=gold)
    InstructionFactory(dataset=dataset, text=UNLABELLED)
    dataset.size = len(PROBLEMS) + 1
    dataset.save(update_fields=["size"])
    return dataset


def config(server, dataset, **params) -> dict:
    name = params.pop("name", f"sbs-{next(_names)}")
    review = params.pop("review", {"rationales": "sample:0.5"})
    return {
        "name": name,
        "recipe": "step_by_step",
        "dataset": dataset.name,
        "endpoints": {
            "teacher": {"base_url": server.url, "model": "rationale-svamp", "name": f"{name}-t", "max_concurrency": 4}
        },
        "student": {"model": "builtin:tiny"},
        "params": {"dataset_kind": "svamp", "batch_size": 4, **params},
        "review": review,
        "seed": 1234,
    }


def run(server, dataset, **params) -> Experiment:
    experiment = experiment_create(config=config(server, dataset, **params))
    experiment_start(experiment_id=experiment.pk, auto_approve=True)
    return drive(experiment)


def pairs_of(experiment) -> dict[tuple[int, str], tuple[str, str, int | None]]:
    snapshot = Snapshot.objects.get(round__experiment=experiment)
    return {(i.instruction_id, i.kind): (i.prompt, i.target, i.response_id) for i in snapshot.items.all()}


def test_rationales_become_predict_and_explain_pairs_one_to_one(llm_server, problems):
    experiment = run(llm_server, problems)
    assert experiment.status == E.FINISHED, experiment.status_reason
    round_ = Round.objects.get(experiment=experiment)
    stages = list(StageRun.objects.filter(round=round_).order_by("position").values_list("name", "kind", "status"))
    assert stages == [
        ("rationales", "rationale", "done"),
        ("gate_rationales", "review_gate", "done"),
        ("train", "train", "done"),
    ]
    labelled = {i.pk: i for i in Instruction.objects.filter(dataset=problems).exclude(gold_label="")}
    assert PoolMember.objects.filter(experiment=experiment, pool="train").count() == len(labelled)
    # The unlabelled item is never asked; each labelled one once, through the ledger.
    uses = LLMCallUse.objects.filter(experiment=experiment, stage="rationales")
    assert uses.values("item").distinct().count() == len(labelled)
    assert llm_server.stats().requests == LLMCall.objects.count()

    # Every settled reply is a rationale row, parsed by the project's one parser.
    responses = {r.instruction_id: r for r in Response.objects.filter(round=round_, role="rationale")}
    invalid = next(pk for pk, i in labelled.items() if i.gold_label == "( 8.0 )")
    assert set(responses) == set(labelled) - {invalid}
    for response in responses.values():
        parsed = parse_rationale("svamp", response.llm_call.reply)
        assert (response.rationale, response.parsed_label) == (parsed.rationale, parsed.label)
        assert response.stage == "rationales" and response.template_id == "rationale_fewshot"
    # The refused reply was resampled, then went to the review queue; it trains nothing.
    first = uses.filter(item__endswith=f":{invalid}:rationale").order_by("call_id").first().call
    final = llm_call_finals([first.pk])[first.pk]
    assert (first.status, final.status, final.sample_index) == ("invalid", "invalid", 2)
    [use] = final.uses.filter(experiment=experiment)
    assert ReviewTask.objects.filter(kind="invalid_reply", subject_id=use.pk).exists()
    run_ = StageRun.objects.get(round=round_, name="rationales")
    assert (run_.total, run_.done, run_.failed) == (len(labelled), len(responses), 1)

    # drop_mismatched is off: disagreements are kept, counted, and reviewed first.
    agree = {pk for pk, r in responses.items() if labels_agree("svamp", r.parsed_label, labelled[pk].gold_label)}
    assert len(agree) == 3 and len(responses) - len(agree) == 2
    assert round_.metrics["rationales"] == {
        "asked": 6,
        "parsed": 5,
        "invalid": 1,
        "agreed": 3,
        "mismatched": 2,
        "dropped": 0,
        "kept": 5,
        "agreement": 0.6,
    }
    tasks = ReviewTask.objects.filter(round=round_, kind="rationale")
    assert tasks.count() == 3 and {t.subject_id for t in tasks} <= {r.pk for r in responses.values()}

    # The snapshot: a predict pair (gold label) and an explain pair (the parsed rationale) per rationale.
    pairs = pairs_of(experiment)
    assert len(pairs) == 2 * len(responses)
    for pk, response in responses.items():
        text = labelled[pk].text
        assert pairs[(pk, "predict")] == (f"predict: {text}\n", labelled[pk].gold_label, response.pk)
        assert pairs[(pk, "explain")] == (f"explain: {text}\n", response.rationale, response.pk)
    [job] = TrainingJob.objects.filter(round=round_)
    assert (job.spec["method"], job.spec["method_params"]) == ("step_by_step", {"alpha": 0.5})
    rows = [json.loads(line) for line in Path(job.spec["data_path"]).read_text().splitlines()]
    assert sorted((r["kind"], r["prompt"], r["target"]) for r in rows) == sorted(
        (kind, prompt, target) for (_, kind), (prompt, target, _) in pairs.items()
    )


def test_mismatches_are_dropped_only_when_asked_and_a_rerun_pays_nothing(llm_server, problems):
    first = run(llm_server, problems, name="sbs-keep")
    requests, calls = llm_server.stats().requests, LLMCall.objects.count()
    snapshot = Snapshot.objects.get(round__experiment=first)

    again = run(llm_server, problems, name="sbs-keep-again")
    assert again.status == E.FINISHED, again.status_reason
    assert (llm_server.stats().requests, LLMCall.objects.count()) == (requests, calls)
    assert not LLMCallUse.objects.filter(experiment=again, paid=True).exists()
    assert Snapshot.objects.get(round__experiment=again).hash == snapshot.hash

    dropped = run(llm_server, problems, name="sbs-drop", drop_mismatched=True, label_source="teacher")
    assert dropped.status == E.FINISHED, dropped.status_reason
    assert llm_server.stats().requests == requests  # the same questions: the ledger answers
    round_ = Round.objects.get(experiment=dropped)
    assert round_.metrics["rationales"]["dropped"] == 2 and round_.metrics["rationales"]["kept"] == 3
    responses = {r.instruction_id: r for r in Response.objects.filter(round=round_, role="rationale")}
    golds = dict(Instruction.objects.filter(pk__in=responses).values_list("pk", "gold_label"))
    kept = {pk for pk, r in responses.items() if labels_agree("svamp", r.parsed_label, golds[pk])}
    pairs = pairs_of(dropped)
    assert {pk for pk, _ in pairs} == kept and len(pairs) == 2 * len(kept) == 6
    for pk in kept:  # label_source teacher: the teacher's own equation, not the gold spelling
        assert pairs[(pk, "predict")][1] == responses[pk].parsed_label != golds[pk]
    # Dropped rationales are never put before a reviewer.
    reviewed = set(ReviewTask.objects.filter(round=round_, kind="rationale").values_list("subject_id", flat=True))
    assert reviewed and reviewed <= {responses[pk].pk for pk in kept}
    assert Snapshot.objects.get(round=round_).hash != snapshot.hash


def test_reviewers_rejections_and_edits_change_the_pairs(llm_server, problems):
    experiment = experiment_create(config=config(llm_server, problems, review={"rationales": "all"}))
    experiment_start(experiment_id=experiment.pk)
    experiment = drive(experiment, train=False)
    assert experiment.status == E.WAITING_REVIEW
    round_ = Round.objects.get(experiment=experiment)
    tasks = list(ReviewTask.objects.filter(round=round_, kind="rationale").order_by("subject_id"))
    assert len(tasks) == 5
    reviewer = UserFactory(role=Role.REVIEWER)
    rejected, edited = tasks[0].subject_id, tasks[1].subject_id
    for task in tasks:
        decision, text = "accept", ""
        if task.subject_id == rejected:
            decision = "reject"
        elif task.subject_id == edited:
            decision, text = "edit", "Add the two numbers the problem gives."
        review_decide(reviewer=reviewer, task_id=task.pk, decision=decision, edited_text=text)
    experiment = drive(experiment, train=False)
    assert experiment.status == E.WAITING_APPROVAL
    experiment_approve_and_train(experiment_id=experiment.pk, by=UserFactory(role=Role.OPERATOR))
    by_response = {}
    for (_, kind), (_, target, response_id) in pairs_of(experiment).items():
        by_response.setdefault(response_id, {})[kind] = target
    assert rejected not in by_response and len(by_response) == 4
    assert by_response[edited]["explain"] == "Add the two numbers the problem gives."
