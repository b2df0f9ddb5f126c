"""Import every real file in ../shared/data and check the counts against an independent count."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from apps.datasets.importing import dataset_import_file
from apps.datasets.models import Dataset, Instruction

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def _norm(s: str) -> str:
    return " ".join(s.split())


def _distinct_alpaca(records) -> int:
    """Distinct (instruction, input) pairs, whitespace-normalised: the documented duplicate rule."""
    return len({(_norm(r["instruction"]), _norm(r.get("input") or "")) for r in records})


def _load(path):
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("filename", "fmt", "records", "distinct"),
    [
        ("LLaMA-Factory_alpaca_en_demo.json", "alpaca", 999, 985),
        ("self-instruct_seed_tasks.jsonl", "jsonl", 175, 175),
        ("self-instruct_user_oriented_instructions.jsonl", "jsonl", 252, 252),
        ("self-instruct_text-davinci-003_predictions.jsonl", "jsonl", 252, 252),
        ("alpaca_eval_results_gpt4_model_outputs.json", "alpaca", 805, 805),
        ("alpaca_eval_results_gpt4_1106_preview_model_outputs.json", "alpaca", 805, 805),
        ("alpaca_eval_results_text_davinci_003_model_outputs.json", "alpaca", 805, 805),
        ("alpaca_eval_results_alpaca-7b_model_outputs.json", "alpaca", 805, 805),
    ],
)
def test_real_alpaca_shaped_files_import_with_the_right_counts(shared_data, filename, fmt, records, distinct):
    path = shared_data / filename
    raw = _load(path)
    # Self-Instruct tasks carry their example input in instances[0].
    for r in raw:
        if "input" not in r and r.get("instances"):
            r["input"] = r["instances"][0]["input"]
    assert (len(raw), _distinct_alpaca(raw)) == (records, distinct)

    report = dataset_import_file(path=path, dataset_name=filename)

    assert report.format == fmt
    assert (report.records_read, report.imported, report.duplicates) == (records, distinct, records - distinct)
    dataset = Dataset.objects.get(name=filename)
    assert dataset.size == distinct == Instruction.objects.filter(dataset=dataset).count()


def test_reference_outputs_and_metadata_are_kept(shared_data):
    dataset_import_file(path=shared_data / "alpaca_eval_results_gpt4_model_outputs.json", dataset_name="gpt4")
    first = json.loads((shared_data / "alpaca_eval_results_gpt4_model_outputs.json").read_text())[0]
    row = Instruction.objects.filter(dataset__name="gpt4").order_by("id").first()
    assert row.text == first["instruction"]
    assert row.reference_output == first["output"]
    assert row.metadata == {"dataset": first["dataset"], "generator": first["generator"]}
    assert row.origin == "imported"


def test_sharegpt_conversations_import_one_instruction_each(shared_data):
    path = shared_data / "FastChat_data_dummy_conversation.json"
    raw = json.loads(path.read_text())
    # Independent count: a one-exchange conversation is its first human turn; a longer one keeps the rest.
    keys = set()
    for conv in raw:
        turns = [_norm(t["value"]) for t in conv["conversations"]]
        keys.add((turns[0], tuple(turns[1:]) if len(turns) > 2 else ()))

    report = dataset_import_file(path=path, dataset_name="sharegpt")

    assert report.format == "sharegpt"
    assert (report.records_read, report.imported) == (500, len(keys))
    assert report.duplicates == 500 - len(keys)
    long_one = Instruction.objects.filter(dataset__name="sharegpt", metadata__has_key="turns").first()
    # Everything after the first user message stays with it, starting with the first answer.
    turns = long_one.metadata["turns"]
    assert long_one.reference_output == turns[0]["content"]
    assert [t["role"] for t in turns[:3]] == ["assistant", "user", "assistant"]


def _alpaca_demo(shared_data):
    return json.loads((shared_data / "LLaMA-Factory_alpaca_en_demo.json").read_text())


def test_csv_of_the_alpaca_demo(shared_data, tmp_path):
    path = tmp_path / "demo.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["instruction", "input", "output"])
        writer.writeheader()
        writer.writerows(_alpaca_demo(shared_data))
    report = dataset_import_file(path=path, dataset_name="csv")
    assert (report.format, report.records_read, report.imported) == ("csv", 999, 985)


def test_parquet_of_the_alpaca_demo(shared_data, tmp_path):
    path = tmp_path / "demo.parquet"
    pq.write_table(pa.Table.from_pylist(_alpaca_demo(shared_data)), path, row_group_size=100)
    report = dataset_import_file(path=path, dataset_name="parquet")
    assert (report.format, report.records_read, report.imported) == ("parquet", 999, 985)


def test_openai_chat_jsonl_of_the_alpaca_demo(shared_data, tmp_path):
    path = tmp_path / "demo.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for r in _alpaca_demo(shared_data):
            user = r["instruction"] + (f"\n\n{r['input']}" if r["input"] else "")
            messages = [{"role": "user", "content": user}, {"role": "assistant", "content": r["output"]}]
            f.write(json.dumps({"messages": messages}) + "\n")
    report = dataset_import_file(path=path, dataset_name="openai")
    assert report.format == "openai"
    assert (report.records_read, report.imported) == (999, 985)


def test_reimport_into_the_same_dataset_adds_nothing(shared_data):
    path = shared_data / "self-instruct_seed_tasks.jsonl"
    dataset_import_file(path=path, dataset_name="seeds")
    again = dataset_import_file(path=path, dataset_name="seeds")
    assert (again.imported, again.duplicates) == (0, 175)
    assert Dataset.objects.get(name="seeds").size == 175 == Instruction.objects.count()


def test_appending_a_partly_overlapping_file_adds_only_new_records(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("".join(json.dumps({"instruction": f"Task {i}"}) + "\n" for i in range(10)))
    second.write_text("".join(json.dumps({"instruction": f"Task  {i}"}) + "\n" for i in range(5, 15)))
    dataset_import_file(path=first, dataset_name="grow")
    report = dataset_import_file(path=second, dataset_name="grow")
    assert (report.imported, report.duplicates) == (5, 5)  # "Task  5" is "Task 5" once whitespace collapses
    assert Dataset.objects.get(name="grow").size == 15 == Instruction.objects.count()
