"""The export writers, read back by the importer's own readers, and the strict OpenAI format checker."""

import io
import tracemalloc

import orjson
import pyarrow.parquet as pq
import pytest

from apps.datasets.formats import Record, read_records
from apps.datasets.formats.openai_check import check_example, check_openai_jsonl
from apps.datasets.formats.writers import EXPORT_FORMATS, parquet_schema, write_records

RECORDS = [
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5", "category": "Math", "label": "5"},
    {"instruction": "Name a colour.", "input": "", "output": "Blue — like the sky ☁", "category": ""},
    {"instruction": "Say nothing yet.", "input": "", "output": ""},  # no answer: chat formats skip it
    {
        "instruction": "Greet me.",
        "output": "Hello!",
        "system": "You are terse.",
        "turns": [{"role": "user", "content": "Again?"}, {"role": "assistant", "content": "Hello again."}],
    },
    {
        "instruction": "predict: 3 apples and 4 pears, how many fruits?",
        "output": "7",
        "kind": "predict",
        "label": "7",
        "rationale": "3 + 4 = 7. So the answer is 7.",
        "provenance": {"dataset": "d", "instruction_id": 9, "origin": "imported", "seed_id": None, "round": 1},
        "scores": {"judge_model": "j", "teacher_score": 8.0, "student_score": 5.5, "gap": 2.5, "verdict": "hard"},
        "review": {"kind": "rationale", "decision": "edit", "reviewer": "ann", "edited": True, "automatic": False},
    },
]


def _write(fmt, records=RECORDS, tmp_path=None, **kw):
    path = tmp_path / f"out.{fmt}"
    with open(path, "wb") as out:
        stats = write_records(fmt, records, out, **kw)
    return path, stats


def _read(path, fmt) -> list[Record]:
    items = list(read_records(path, {"openai": "openai", "sharegpt": "sharegpt"}.get(fmt, fmt)))
    assert all(isinstance(i, Record) for i in items), [str(i) for i in items if not isinstance(i, Record)]
    return items


def _prompt(r: dict) -> str:
    return f"{r['instruction']}\n\n{r['input']}" if r.get("input") else r["instruction"]


def test_alpaca_round_trips_every_field_through_the_importers_reader(tmp_path):
    path, stats = _write("alpaca", tmp_path=tmp_path)
    assert stats.written == len(RECORDS) and not stats.skipped
    back = _read(path, "alpaca")
    assert [(r.text, r.input, r.reference_output, r.gold_label, r.task_category) for r in back] == [
        (r["instruction"], r.get("input", ""), r["output"], r.get("label", ""), r.get("category", "")) for r in RECORDS
    ]
    assert back[4].metadata["rationale"] == RECORDS[4]["rationale"]
    assert back[4].metadata["review"]["decision"] == "edit"
    assert orjson.loads(path.read_bytes())[0]["instruction"] == "Add the numbers."  # one valid JSON array


@pytest.mark.parametrize("fmt", ["sharegpt", "openai"])
def test_chat_formats_round_trip_prompts_answers_system_and_turns(tmp_path, fmt):
    path, stats = _write(fmt, tmp_path=tmp_path)
    answered = [r for r in RECORDS if r["output"]]
    assert stats.written == len(answered) and stats.skipped == {"no answer": 1}
    back = _read(path, fmt)
    assert [(r.text, r.reference_output) for r in back] == [(_prompt(r), r["output"]) for r in answered]
    greet = back[2]
    assert greet.metadata["system"] == "You are terse."
    assert greet.turns == [
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Again?"},
        {"role": "assistant", "content": "Hello again."},
    ]
    if fmt == "sharegpt":
        assert back[0].task_category == "Math" and back[3].metadata["label"] == "7"


def test_openai_lines_are_messages_only_and_pass_the_strict_checker(tmp_path):
    path, _ = _write("openai", tmp_path=tmp_path)
    count, problems = check_openai_jsonl(path)
    assert count == 4 and problems == []
    for line in path.read_bytes().splitlines():
        assert set(orjson.loads(line)) == {"messages"}


def test_openai_optional_fields_go_to_a_sidecar_line_for_line(tmp_path):
    side = io.BytesIO()
    _, stats = _write("openai", tmp_path=tmp_path, sidecar=side)
    lines = side.getvalue().splitlines()
    assert len(lines) == stats.written == 4
    assert orjson.loads(lines[3])["scores"]["gap"] == 2.5 and orjson.loads(lines[0]) == {}


def test_parquet_has_a_fixed_schema_and_reads_back(tmp_path):
    fields = {"system", "turns", "rationale", "kind", "provenance", "scores", "review"}
    path, stats = _write("parquet", tmp_path=tmp_path, fields=fields)
    table = pq.read_table(path)
    assert table.schema.equals(parquet_schema(fields), check_metadata=False)
    rows = table.to_pylist()
    assert [r["output"] for r in rows] == [r["output"] for r in RECORDS]
    assert rows[4]["provenance"]["instruction_id"] == 9 and rows[4]["provenance"]["lineage"] is None
    assert rows[0]["provenance"] is None and rows[3]["turns"][1]["content"] == "Hello again."
    back = _read(path, "parquet")
    assert [(r.text, r.input, r.gold_label) for r in back] == [
        (r["instruction"], r.get("input", ""), r.get("label", "")) for r in RECORDS
    ]
    assert stats.bytes == path.stat().st_size


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_the_hash_is_the_files_and_an_empty_export_is_still_valid(tmp_path, fmt):
    import hashlib

    path, stats = _write(fmt, records=[], tmp_path=tmp_path)
    assert stats.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert stats.written == 0
    if fmt in ("alpaca", "sharegpt"):
        assert orjson.loads(path.read_bytes()) == []
    if fmt == "parquet":
        assert pq.read_table(path).num_rows == 0


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
def test_writers_stream_in_bounded_memory(tmp_path, fmt):
    """50,000 records from a generator: the writer's peak allocation stays far below the data's size."""
    text = "x" * 400

    def many():
        for i in range(50_000):
            yield {"instruction": f"Question {i}?", "input": "", "output": text, "category": "c"}

    tracemalloc.start()
    _, stats = _write(fmt, records=many(), tmp_path=tmp_path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert stats.written == 50_000
    assert peak < 50_000 * len(text) / 2, peak  # a row group (parquet) or a write buffer (JSON), not the file


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'csv'"):
        write_records("csv", [], io.BytesIO())


GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


@pytest.mark.parametrize(
    ("example", "reason"),
    [
        ({"messages": []}, "non-empty list"),
        ({**GOOD, "id": 1}, "unexpected keys"),
        ({"messages": [{"role": "assistant", "content": "Hi"}]}, "expected the user"),
        ({"messages": [{"role": "user", "content": "Hi"}]}, "end with an assistant"),
        ({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "  "}]}, "empty"),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}, "expected the assistant"),
        ({"messages": [GOOD["messages"][0], {"role": "system", "content": "s"}]}, "only come first"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "unknown role"),
        ({"messages": [{"role": "user", "content": "Hi", "name": "x"}, GOOD["messages"][1]]}, "exactly"),
        ({"messages": [{"role": "user", "content": ["Hi"]}, GOOD["messages"][1]]}, "non-text"),
        ([GOOD], "not a JSON object"),
    ],
)
def test_the_checker_names_each_broken_rule(example, reason):
    assert reason in (check_example(example) or "")


def test_the_checker_accepts_a_good_example_with_a_system_message_and_weights():
    system = {"role": "system", "content": "Be brief."}
    assert check_example({"messages": [system, *GOOD["messages"]]}) is None
    weighted = [GOOD["messages"][0], {**GOOD["messages"][1], "weight": 0}]
    assert check_example({"messages": [*weighted, *GOOD["messages"]]}) is None


def test_the_checker_reads_files_strictly(tmp_path):
    line = orjson.dumps(GOOD)
    cases = {
        "bom": b"\xef\xbb\xbf" + line + b"\n",
        "no newline": line,
        "blank": line + b"\n\n" + line + b"\n",
        "two objects": line + line + b"\n",
        "latin1": line[:-3] + b'\xe9"}]}\n',
        "empty": b"",
    }
    found = {}
    for name, body in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(body)
        found[name] = " ".join(str(p) for p in check_openai_jsonl(path)[1])
    assert "byte-order mark" in found["bom"]
    assert "does not end with a newline" in found["no newline"]
    assert "blank line" in found["blank"]
    assert "not one JSON value" in found["two objects"]
    assert "UTF-8" in found["latin1"]
    assert "no example" in found["empty"]


def test_hugging_face_datasets_loads_the_parquet_when_installed(tmp_path):
    """`datasets` is not in the lock (it brings pandas and more); where it is installed, it must load the file."""
    datasets = pytest.importorskip("datasets")
    fields = {"system", "turns", "rationale", "kind", "provenance", "scores", "review"}
    path, _ = _write("parquet", tmp_path=tmp_path, fields=fields)
    loaded = datasets.load_dataset("parquet", data_files=str(path), cache_dir=str(tmp_path / "cache"))["train"]
    assert loaded.num_rows == len(RECORDS) and loaded[4]["scores"]["gap"] == 2.5
