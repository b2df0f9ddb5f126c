"""The demo datasets of the demo experiments: shipped, licensed, imported once, and answerable offline the
way the demos ask (step-by-step rationales replayed, the generator's picks answered by the teacher)."""

import importlib.util
import io
import json

import pytest
from django.core.management import call_command

from apps.datasets.demo import DEMO_DATASETS, DEMO_DIR, demo_datasets_load
from apps.datasets.formats.records import content_hash
from apps.datasets.models import Dataset, ImportJob, Instruction
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.selectors import llm_request_for
from apps.llm.services import llm_calls_enqueue
from tests.apps.llm.conftest import drain, make_endpoint, make_experiment
from workers.algorithms.step_by_step import parse_rationale
from workers.algorithms.task_vocabulary import is_task_category
from workers.llm.prompts import get_template

pytestmark = pytest.mark.django_db


def _lines(filename):
    with (DEMO_DIR / filename).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def test_every_demo_file_is_shipped_with_a_notice_row_and_the_folder_stays_small():
    notice = (DEMO_DIR / "NOTICE.md").read_text(encoding="utf-8")
    for demo in DEMO_DATASETS:
        assert (DEMO_DIR / demo.filename).is_file(), demo.filename
        assert f"`{demo.filename}`" in notice, f"{demo.filename} has no row in demo_data/NOTICE.md"
        assert demo.license and demo.source
    total = sum(p.stat().st_size for p in DEMO_DIR.iterdir() if p.is_file())
    assert total < 3 * 1024 * 1024, total


def test_the_shipped_subsets_are_what_the_build_script_makes(shared_data, monkeypatch):
    spec = importlib.util.spec_from_file_location("demo_build", DEMO_DIR / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for name, rows in build.build(shared_data).items():
        assert (DEMO_DIR / name).read_text(encoding="utf-8") == build._text(rows), f"{name} differs from a rebuild"


def test_load_demo_imports_every_demo_dataset_once():
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    for demo in DEMO_DATASETS:
        dataset = Dataset.objects.get(name=demo.name)
        assert dataset.size == len(_lines(demo.filename)) == dataset.instructions.count(), demo.name
        assert (dataset.license, dataset.source, dataset.description) == (demo.license, demo.source, demo.description)
        assert f"{demo.name}: {dataset.size:,} imported, 0 duplicates skipped" in out.getvalue()
    assert ImportJob.objects.count() == len(DEMO_DATASETS)
    again = io.StringIO()
    call_command("load_demo", stdout=again)
    assert again.getvalue().strip() == "Demo datasets already present."
    assert ImportJob.objects.count() == len(DEMO_DATASETS)
    assert demo_datasets_load() == []


def test_mt_bench_is_an_eval_set_in_the_task_vocabulary():
    demo_datasets_load()
    rows = list(Instruction.objects.filter(dataset__name="demo-mt-bench").order_by("id"))
    assert len(rows) == 80 and all(is_task_category(r.task_category) for r in rows)
    counts = {}
    for row in rows:
        counts[row.task_category] = counts.get(row.task_category, 0) + 1
    assert counts == {
        "Writing": 10,
        "Roleplay": 10,
        "Reasoning": 10,
        "Math": 10,
        "Code Generation": 10,
        "Complex Format": 10,  # extraction
        "Others": 20,  # stem, humanities
    }
    assert {r.metadata["mt_bench_category"] for r in rows if r.task_category == "Others"} == {"stem", "humanities"}
    assert rows[0].text.startswith("Compose an engaging travel blog post about a recent trip to Hawaii")
    assert rows[0].metadata["question_id"] == 81 and rows[0].metadata["second_turn"]
    answered = [r for r in rows if r.reference_output]
    assert [r.metadata["question_id"] for r in answered] == list(range(101, 131))
    reference = Instruction.objects.filter(dataset__name="demo-mt-bench-reference")
    assert sorted(reference.values_list("content_hash", flat=True)) == sorted(r.content_hash for r in answered)


def test_the_lion_and_tapir_teacher_answers_every_seed_reserve_item_and_eval_question():
    """The replay teacher finds an instruction by its content hash, so each item the demos can ask it
    about must be in demo-teacher-answers with an answer."""
    demo_datasets_load()
    answered = dict(
        Instruction.objects.filter(dataset__name="demo-teacher-answers").values_list("content_hash", "reference_output")
    )
    for name in ("demo-alpaca-seeds", "demo-mt-bench-reference"):
        hashes = Instruction.objects.filter(dataset__name=name).values_list("content_hash", flat=True)
        assert all(answered.get(h) for h in hashes), name
    # A reserve text becomes a generated instruction with no input: that is the hash the teacher is asked by.
    for text, input_ in Instruction.objects.filter(dataset__name="demo-alpaca-reserve").values_list("text", "input"):
        assert input_ == "" and answered.get(content_hash(text, "")), text


@pytest.mark.parametrize(
    ("dataset", "kind", "task_type"),
    [("demo-svamp-train", "svamp", "arithmetic"), ("demo-cqa-train", "cqa", "multiple_choice")],
)
def test_the_step_by_step_teacher_replays_palm_rationales(dataset, kind, task_type):
    """The step-by-step stage sends each item's own text as the `instruction` variable; the replay answers
    with PaLM's cut completion, which the rationale contract reads as the parser does."""
    demo_datasets_load()
    source = Dataset.objects.get(name=dataset)
    endpoint = make_endpoint(backend=LLMEndpoint.Backend.REPLAY, model="palm-540b-recorded", offline_dataset=source)
    template = get_template("rationale_fewshot")
    items = list(source.instructions.order_by("id")[:25])
    requests = []
    for item in items:
        contract = {"dataset": kind}
        if kind == "cqa":
            contract["choices"] = item.metadata["choices"]
        variables = {
            "instruction": item.text,
            "input": item.input,
            "task_type": task_type,
            "question": f"Q: {item.text}",
        }
        requests.append(llm_request_for(endpoint, template, variables, contract=contract))
    calls = llm_calls_enqueue(
        endpoint=endpoint, requests=requests, purpose="teacher", experiment_id=make_experiment().pk, kick=False
    )
    drain(endpoint)
    for item, call in zip(items, calls, strict=True):
        call = LLMCall.objects.get(pk=call.pk)
        assert call.status == "ok", call.error
        assert call.reply == item.reference_output
        expected = parse_rationale(kind, item.reference_output, choices=item.metadata.get("choices"))
        assert call.parsed["label"] == expected.label and call.parsed["rationale"] == expected.rationale
        assert item.gold_label  # the gold answer the label check compares with
    svamp = Instruction.objects.filter(dataset__name="demo-svamp-train").first()
    assert svamp.reference_output.startswith("Luke scored 84 points") and svamp.reference_output.endswith(
        "The answer is (84 / 2)."
    )
    assert svamp.gold_label == "( 84.0 / 2.0 )"


def test_the_generators_pick_is_answered_by_the_teacher_and_judged_offline():
    """The Lion demo's chain offline: the retrieval generator draws from demo-alpaca-reserve, the replay
    teacher answers what it drew, and the similarity judge scores against demo-teacher-answers."""
    demo_datasets_load()
    seeds = Dataset.objects.get(name="demo-alpaca-seeds")
    experiment = make_experiment(dataset=seeds)
    generator = make_endpoint(
        backend=LLMEndpoint.Backend.RETRIEVAL_GENERATOR,
        model="reserve",
        offline_dataset=Dataset.objects.get(name="demo-alpaca-reserve"),
    )
    teachers = Dataset.objects.get(name="demo-teacher-answers")
    teacher = make_endpoint(backend=LLMEndpoint.Backend.REPLAY, model="gpt-4-recorded", offline_dataset=teachers)
    judge = make_endpoint(backend=LLMEndpoint.Backend.SIMILARITY_JUDGE, model="minilm", offline_dataset=teachers)

    hard = get_template("generate_hard")
    picks = [
        llm_request_for(generator, hard, {"instruction": seed.text, "input": seed.input})
        for seed in seeds.instructions.order_by("id")[:5]
    ]
    calls = llm_calls_enqueue(
        endpoint=generator, requests=picks, purpose="generator", experiment_id=experiment.pk, kick=False
    )
    drain(generator)
    texts = [LLMCall.objects.get(pk=c.pk).parsed["text"] for c in calls]
    assert len(set(texts)) == 5

    answer = get_template("teacher_answer")
    asked = [llm_request_for(teacher, answer, {"instruction": t, "input": ""}) for t in texts]
    answered = llm_calls_enqueue(
        endpoint=teacher, requests=asked, purpose="teacher", experiment_id=experiment.pk, kick=False
    )
    drain(teacher)
    replies = [LLMCall.objects.get(pk=c.pk) for c in answered]
    assert all(r.status == "ok" and r.reply for r in replies)

    question = Instruction.objects.filter(dataset__name="demo-mt-bench-reference").first()
    pairwise = get_template("judge_pairwise")
    request = llm_request_for(
        judge,
        pairwise,
        {
            "instruction": question.text,
            "input": "",
            "answer_1": question.reference_output,
            "answer_2": "I do not know.",
        },
    )
    [call] = llm_calls_enqueue(
        endpoint=judge, requests=[request], purpose="judge", experiment_id=experiment.pk, kick=False
    )
    drain(judge)
    call.refresh_from_db()
    assert call.status == "ok" and call.parsed["assistant_1"] == 10 and call.parsed["assistant_2"] < 5


CONFIGS = DEMO_DIR.parent / "configs"
DEMO_CONFIGS = ("lion", "tapir", "step_by_step", "mos")


@pytest.mark.parametrize("recipe", DEMO_CONFIGS)
def test_each_demo_config_parses_and_resolves_against_the_demo_datasets(recipe):
    from apps.experiments.config import parse_config, resolve_config

    path = CONFIGS / "demo" / f"{recipe}.yaml"
    config = parse_config(path.read_text(encoding="utf-8"), filename=str(path))
    assert config.recipe == recipe and config.seed == 1234
    assert config.student["model"] == "builtin:tiny" and config.student["finetune"] == "full"
    assert config.params["rounds"] == (2 if recipe in ("lion", "tapir") else 1)
    named = {ref.name for ref in config.datasets} | {
        ref.inline["offline_dataset"]
        for ref in config.endpoints.values()
        if ref.inline and "offline_dataset" in ref.inline
    }
    assert named <= {demo.name for demo in DEMO_DATASETS}, named
    assert all(ref.is_offline for ref in config.endpoints.values())  # no key, no network
    demo_datasets_load()
    resolved = resolve_config(config)
    assert [d.name for d, _ in resolved.datasets["eval"]] == [config.datasets_with_role("eval")[0].name]


def test_the_real_endpoint_example_in_the_configs_readme_parses():
    import re

    from apps.experiments.config import parse_config

    text = (CONFIGS / "README.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    config = parse_config(example)
    assert config.endpoints["teacher"].inline["base_url"] == "https://api.openai.com/v1"
    assert not any(ref.is_offline for ref in config.endpoints.values())
