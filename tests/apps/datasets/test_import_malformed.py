"""A corpus of broken files: each fails with a message that says where and why, and changes nothing."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from apps.datasets.importing import ImportFailed, dataset_import_file
from apps.datasets.models import Dataset, Instruction

pytestmark = pytest.mark.django_db

GOOD = json.dumps({"instruction": "Name three primary colours.", "input": "", "output": "Red, yellow, blue."})
BIG = "x" * (10 * 1024 * 1024)


def _jsonl(*lines) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _parquet_without_instruction(path):
    pq.write_table(pa.Table.from_pylist([{"prompt": "hi", "completion": "hello"}]), path)


# (file name, content or writer, --format, the message must contain each of these)
CORPUS = [
    ("bad_json.jsonl", _jsonl(GOOD, GOOD, '{"instruction": "oops",'), "auto", ["line 3", "invalid JSON"]),
    ("missing_comma.json", f"[{GOOD}\n{GOOD}]".encode(), "auto", ["record 2", "invalid JSON"]),
    ("truncated.json", f"[{GOOD},\n{GOOD[:30]}".encode(), "auto", ["record 2", "truncated"]),
    ("truncated.jsonl", _jsonl(GOOD, GOOD)[:-20], "auto", ["line 2", "invalid JSON", "truncated"]),
    (
        "wrong_keys.jsonl",
        _jsonl(json.dumps({"prompt": "a", "completion": "b"})),
        "auto",
        ["line 1", "missing the 'instruction' key", "completion, prompt"],
    ),
    (
        "empty_instruction.json",
        f'[{GOOD}, {{"instruction": ""}}]'.encode(),
        "auto",
        ["record 2", "'instruction' is empty"],
    ),
    (
        "blank_instruction.jsonl",
        _jsonl(GOOD, json.dumps({"instruction": " \n\t "})),
        "auto",
        ["line 2", "'instruction' is empty"],
    ),
    (
        "number_instruction.jsonl",
        _jsonl(json.dumps({"instruction": 42})),
        "auto",
        ["line 1", "'instruction' must be a string, got a number"],
    ),
    (
        "list_input.jsonl",
        _jsonl(json.dumps({"instruction": "Sum these.", "input": [1, 2]})),
        "auto",
        ["line 1", "'input' must be a string, got an array"],
    ),
    ("bad_utf8.jsonl", GOOD.encode() + b"\n" + b'{"instruction": "caf\xe9"}\n', "auto", ["line 2", "invalid UTF-8"]),
    ("bad_utf8.json", b"[\n" + GOOD.encode() + b',\n{"instruction": "caf\xe9"}]', "auto", ["line 3", "invalid UTF-8"]),
    ("bad_utf8.csv", b"instruction,input\nhello,\ncaf\xe9,x\n", "auto", ["invalid UTF-8"]),
    (
        "huge_record.jsonl",
        _jsonl(GOOD, json.dumps({"instruction": BIG})),
        "auto",
        ["line 2", "10,485,", "over the 1,048,576-byte limit"],
    ),
    (
        "huge_record.json",
        f'[{{"instruction": "{BIG}"}}]'.encode(),
        "auto",
        ["record 1", "over the 1,048,576-byte limit"],
    ),
    ("huge_field.csv", f"instruction\n{BIG}\n".encode(), "auto", ["line 2", "over the 1,048,576-byte limit"]),
    (
        "mixed.jsonl",
        _jsonl(GOOD, json.dumps({"conversations": [{"from": "human", "value": "hi"}]})),
        "auto",
        ["line 2", "ShareGPT record", "one format"],
    ),
    (
        "mixed_sharegpt.jsonl",
        _jsonl(json.dumps({"conversations": [{"from": "human", "value": "hi"}]}), GOOD),
        "auto",
        ["line 2", "expected a ShareGPT record", "Alpaca record"],
    ),
    (
        "gpt_first.json",
        json.dumps([{"conversations": [{"from": "gpt", "value": "Hello!"}]}]).encode(),
        "auto",
        ["record 1", "message 1 is from the assistant"],
    ),
    (
        "unknown_speaker.json",
        json.dumps([{"conversations": [{"from": "narrator", "value": "Once"}]}]).encode(),
        "auto",
        ["record 1", "unknown 'from': 'narrator'"],
    ),
    (
        "image_part.jsonl",
        _jsonl(
            json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})
        ),
        "auto",
        ["line 1", "non-text part (image_url)"],
    ),
    ("no_instruction_column.csv", b"prompt,output\nhi,hello\n", "auto", ["line 1", "no 'instruction' column"]),
    (
        "ragged.csv",
        b"instruction,input,output\nA task,,out\nonly,two\n",
        "auto",
        ["line 3", "the row has 2 fields, the header has 3"],
    ),
    ("empty.jsonl", b"", "auto", ["the file is empty"]),
    ("empty_array.json", b"[]", "auto", ["no records found"]),
    (
        "pretty_object.json",
        json.dumps({"instruction": "hi", "output": "hello"}, indent=2).encode(),
        "auto",
        ["line 1", "not a complete JSON object"],
    ),
    ("strings.json", b'["just a string"]', "auto", ["record 1", "expected a JSON object", "got str"]),
    ("nul.jsonl", _jsonl(json.dumps({"instruction": "a\u0000b"})), "auto", ["line 1", "NUL character"]),
    ("trailing_garbage.json", f"[{GOOD}] extra".encode(), "auto", ["invalid JSON"]),
    ("no_instruction.parquet", _parquet_without_instruction, "auto", ["no 'instruction' column"]),
    ("corrupt.parquet", b"PAR1" + b"\x00garbage" * 10, "auto", ["not a readable parquet file"]),
    ("array_as_jsonl.json", f"[{GOOD}]".encode(), "jsonl", ["line 1", "use the 'alpaca' format"]),
    ("jsonl_as_alpaca.jsonl", _jsonl(GOOD), "alpaca", ["line 1", "use 'jsonl' for JSON Lines"]),
]


@pytest.fixture
def existing_dataset(tmp_path):
    """Broken files are imported into a dataset that already holds rows: they must stay as they were."""
    path = tmp_path / "good.jsonl"
    path.write_bytes(_jsonl(GOOD, json.dumps({"instruction": "Another task."})))
    dataset_import_file(path=path, dataset_name="target")
    return Dataset.objects.get(name="target")


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 20


@pytest.mark.parametrize(("name", "content", "fmt", "expected"), CORPUS, ids=[c[0] for c in CORPUS])
@pytest.mark.parametrize("into", ["new", "existing"])
def test_malformed_file_fails_precisely_and_changes_nothing(
    tmp_path, existing_dataset, name, content, fmt, expected, into
):
    path = tmp_path / name
    if callable(content):
        content(path)
    else:
        path.write_bytes(content)
    dataset_name = "fresh" if into == "new" else "target"
    before = (Dataset.objects.count(), Instruction.objects.count(), Dataset.objects.get(name="target").size)

    with pytest.raises(ImportFailed) as failure:
        dataset_import_file(path=path, dataset_name=dataset_name, fmt=fmt)

    message = str(failure.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Nothing was imported" in message or "nothing was imported" in message
    assert (failure.value.report.imported, failure.value.report.duplicates) == (0, 0)
    after = (Dataset.objects.count(), Instruction.objects.count(), Dataset.objects.get(name="target").size)
    assert after == before


def test_skip_invalid_imports_the_good_records_and_reports_the_bad(tmp_path):
    path = tmp_path / "some_bad.jsonl"
    path.write_bytes(_jsonl(GOOD, "{not json", json.dumps({"instruction": ""}), json.dumps({"instruction": "Fine."})))
    report = dataset_import_file(path=path, dataset_name="partial", skip_invalid=True)
    assert (report.imported, report.skipped_invalid) == (2, 2)
    assert [p.location for p in report.problems] == ["line 2", "line 3"]
    assert Instruction.objects.filter(dataset__name="partial").count() == 2


def test_every_bad_record_is_reported_not_only_the_first(tmp_path):
    path = tmp_path / "many_bad.jsonl"
    path.write_bytes(_jsonl(*[json.dumps({"instruction": ""}) for _ in range(5)], GOOD))
    with pytest.raises(ImportFailed) as failure:
        dataset_import_file(path=path, dataset_name="x")
    report = failure.value.report
    assert report.problem_count == 5
    assert [p.location for p in report.problems] == [f"line {i}" for i in range(1, 6)]


def test_missing_file_and_empty_name_fail_clearly(tmp_path):
    with pytest.raises(ImportFailed, match="No such file"):
        dataset_import_file(path=tmp_path / "nope.json", dataset_name="x")
    with pytest.raises(ImportFailed, match="dataset name is required"):
        dataset_import_file(path=tmp_path / "nope.json", dataset_name="  ")
    assert Dataset.objects.count() == 0
