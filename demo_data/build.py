"""Rebuild the demo subsets in demo_data/ from the public data in ../shared/data (see NOTICE.md).

    python demo_data/build.py            # writes the files next to this script
    python demo_data/build.py --check    # rebuilds in memory and fails if a shipped file differs

Every choice is fixed (first records in file order, or a seeded shuffle), so a rebuild gives the same
bytes. Only development machines have ../shared/data; a fresh clone ships the outputs, not the inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from workers.algorithms.step_by_step import cqa_input, parse_rationale  # noqa: E402
from workers.algorithms.step_by_step.rationales import _ANSWER_CLAUSE, cut_completion  # noqa: E402
from workers.algorithms.task_vocabulary import to_task_category  # noqa: E402
from workers.llm.parsing import ParseError, parse_generated_instruction  # noqa: E402

SEED = 20261201
SIZES = {
    "svamp": {"train": 200, "test": 50},
    "cqa": {"train": 300, "test": 100},
    "alpaca_seeds": 40,
    "alpaca_reserve": 260,
}


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _completions(folder: Path, split: str) -> list[str]:
    files = sorted((folder / "llm").glob(f"{split}_CoT_*.json"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    found: list[str] = []
    for path in files:
        found += json.loads(path.read_text(encoding="utf-8"))
    return found


def palm_reference(dataset: str, completion: str) -> str | None:
    """PaLM's completion cut where the next few-shot exemplar starts and after its answer line, so it ends
    "... The answer is (84 / 2)."; None when the step-by-step parser cannot read it."""
    parsed = parse_rationale(dataset, completion)
    if not parsed.ok:
        return None
    text = cut_completion(completion)
    last = list(_ANSWER_CLAUSE.finditer(text))[-1]
    line_end = text.find("\n", last.end())
    cut = (text if line_end < 0 else text[:line_end]).strip()
    again = parse_rationale(dataset, cut)
    assert (again.rationale, again.label, again.choice) == (parsed.rationale, parsed.label, parsed.choice), cut
    return cut


def step_by_step_records(root: Path, dataset: str, split: str, size: int) -> list[dict]:
    """The first `size` records of a split whose PaLM completion parses, as Alpaca-style JSON lines: the
    instruction is the input the step-by-step stage sends (so the replay backend finds it), the label the
    gold answer, the output PaLM's cut rationale."""
    folder = root / dataset
    records = _jsonl(folder / f"{dataset}_{split}.json")
    completions = _completions(folder, split)
    assert len(records) == len(completions), (dataset, split)
    rows = []
    for index, (record, completion) in enumerate(zip(records, completions, strict=True)):
        reference = palm_reference(dataset, completion)
        if reference is None:
            continue
        if dataset == "svamp":
            row = {"instruction": record["input"], "label": record["label"], "output": reference}
        else:
            choices = list(record["choices"])
            row = {
                "instruction": cqa_input(record["question"], choices),
                "label": record["answer"],
                "output": reference,
                "choices": choices,
                "cqa_id": record["id"],
            }
        row.update({"split": split, "source_index": index})
        rows.append(row)
        if len(rows) == size:
            break
    return rows


def mt_bench(data: Path) -> tuple[list[dict], list[dict]]:
    """All 80 questions (first turn as the instruction, TAPIR category, MT-Bench's own in metadata, GPT-4's
    reference answer where FastChat has one) and the 30 that have a reference."""
    references = {
        r["question_id"]: r["choices"][0]["turns"]
        for r in _jsonl(data / "FastChat_mt_bench_reference_answer_gpt-4.jsonl")
    }
    rows = []
    for question in _jsonl(data / "FastChat_mt_bench_question.jsonl"):
        qid = question["question_id"]
        row = {
            "instruction": question["turns"][0],
            "task_category": to_task_category(question["category"], source="mt-bench"),
            "mt_bench_category": question["category"],
            "question_id": qid,
            "second_turn": question["turns"][1] if len(question["turns"]) > 1 else "",
        }
        if qid in references:
            row["output"] = references[qid][0]
            row["reference_second_turn"] = references[qid][1] if len(references[qid]) > 1 else ""
        rows.append(row)
    return rows, [r for r in rows if "output" in r]


def _generator_ready(text: str) -> bool:
    """The retrieval generator returns a reserve text as the new instruction; it must pass the generator
    contract unchanged, or the teacher's replay would not find the instruction it became."""
    try:
        return parse_generated_instruction(text).text == text
    except ParseError:
        return False


def alpaca(data: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """Seeds (with GPT-4's answers), a reserve of input-free instructions for the retrieval generator, and
    the teacher's answers to both, from the Alpaca-GPT-4 demo file."""
    records = json.loads((data / "LLaMA-Factory_alpaca_en_demo.json").read_text(encoding="utf-8"))
    order = list(range(len(records)))
    random.Random(SEED).shuffle(order)
    seen, seeds, reserve = set(), [], []
    for index in order:
        record = records[index]
        text, input_, output = record["instruction"].strip(), record["input"].strip(), record["output"].strip()
        key = " ".join(f"{text} {input_}".split()).lower()
        if not output or key in seen:
            continue
        seen.add(key)
        row = {"instruction": text, "input": input_, "output": output, "source": "alpaca-gpt4", "source_index": index}
        if len(seeds) < SIZES["alpaca_seeds"]:
            seeds.append(row)
        elif len(reserve) < SIZES["alpaca_reserve"] and not input_ and _generator_ready(text):
            reserve.append(row)
        if len(seeds) == SIZES["alpaca_seeds"] and len(reserve) == SIZES["alpaca_reserve"]:
            break
    answers = seeds + reserve
    reserve_texts = [{"instruction": r["instruction"], "source_index": r["source_index"]} for r in reserve]
    return seeds, reserve_texts, answers


def build(data: Path) -> dict[str, list[dict]]:
    root = data / "distilling_step_by_step"
    mt_all, mt_reference = mt_bench(data)
    seeds, reserve, answers = alpaca(data)
    # The offline teacher (replay) and judge (similarity to its answer) of the Lion and TAPIR demos: one
    # dataset that answers the seeds, everything the generator can draw, and the eval questions.
    teacher = answers + [{**row, "source": "mt-bench"} for row in mt_reference]
    files = {
        "mt_bench_questions.jsonl": mt_all,
        "mt_bench_reference.jsonl": mt_reference,
        "alpaca_gpt4_seeds.jsonl": seeds,
        "alpaca_gpt4_reserve.jsonl": reserve,
        "teacher_answers.jsonl": teacher,
    }
    for dataset in ("svamp", "cqa"):
        for split, size in SIZES[dataset].items():
            files[f"{dataset}_{split}.jsonl"] = step_by_step_records(root, dataset, split, size)
    return files


def _text(rows: list[dict]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped files, write nothing")
    args = parser.parse_args()
    data = Path(os.environ.get("RETORT_SHARED_DATA", HERE.parent.parent / "shared" / "data"))
    differ = []
    for name, rows in build(data).items():
        path = HERE / name
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != _text(rows):
                differ.append(name)
        else:
            path.write_text(_text(rows), encoding="utf-8")
        print(f"{name}: {len(rows)} records")
    if differ:
        print("differ from a rebuild:", ", ".join(differ))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
