import json

import pytest

# (folder in the shared data, our dataset name, splits that have PaLM completions)
SETS = {
    "cqa": ("cqa", ("train", "test")),
    "svamp": ("svamp", ("train", "test")),
    "anli": ("anli1", ("valid", "test")),
    "esnli": ("esnli", ("valid", "test")),
}


def _jsonl(path):
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.fixture(scope="session")
def palm(shared_data):
    """dataset -> (records, completions), every split, completions in record order across the k files."""
    root = shared_data / "distilling_step_by_step"
    loaded = {}
    for name, (folder, splits) in SETS.items():
        records, completions = [], []
        for split in splits:
            records += _jsonl(root / folder / f"{folder}_{split}.json")
            files = sorted(
                (root / folder / "llm").glob(f"{split}_CoT_*.json"),
                key=lambda p: int(p.stem.rsplit("_", 1)[1]),
            )
            for path in files:
                completions += json.loads(path.read_text(encoding="utf-8"))
        assert len(records) == len(completions)
        loaded[name] = (records, completions)
    return loaded
