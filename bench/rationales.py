"""Parse every real PaLM chain-of-thought completion in ../shared/data and report parse rate and label
agreement per dataset (the figures quoted in docs/algorithms.md).

    python bench/rationales.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workers.algorithms.step_by_step import build_examples  # noqa: E402

SETS = {"cqa": ("cqa", ("train", "test")), "svamp": ("svamp", ("train", "test")),
        "anli": ("anli1", ("valid", "test")), "esnli": ("esnli", ("valid", "test"))}  # fmt: skip


def load(root: Path, folder: str, splits: tuple[str, ...]) -> tuple[list[dict], list[str]]:
    records: list[dict] = []
    completions: list[str] = []
    for split in splits:
        with (root / folder / f"{folder}_{split}.json").open(encoding="utf-8") as handle:
            records += [json.loads(line) for line in handle if line.strip()]
        files = sorted((root / folder / "llm").glob(f"{split}_CoT_*.json"), key=lambda p: int(p.stem.split("_")[-1]))
        for path in files:
            completions += json.loads(path.read_text(encoding="utf-8"))
    return records, completions


def main() -> None:
    data = Path(os.environ.get("RETORT_SHARED_DATA", REPO.parent / "shared" / "data"))
    root = data / "distilling_step_by_step"
    header = ("dataset", "completions", "parsed", "parse rate", "agree", "agreement")
    print("{:<8} {:>11} {:>8} {:>10} {:>7} {:>9}  unparsed".format(*header))
    for name, (folder, splits) in SETS.items():
        records, completions = load(root, folder, splits)
        _, report = build_examples(name, records, completions)
        print(
            f"{name:<8} {report.total:>11,} {report.parsed:>8,} {report.parse_rate:>10.2%} "
            f"{report.agreed:>7,} {report.agreement:>9.2%}  {report.problems}"
        )


if __name__ == "__main__":
    main()
