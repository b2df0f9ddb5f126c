"""Small valid configs, one per recipe, and `patched` to derive a bad one from them."""

import copy

DELETE = object()


class Replace:
    """A patch value that replaces a mapping instead of merging into it."""

    def __init__(self, value):
        self.value = value


LION = {
    "name": "lion-demo",
    "recipe": "lion",
    "dataset": "demo-alpaca",
    "eval_dataset": "demo-eval",
    "endpoints": {
        "teacher": "offline:replay:demo-alpaca",
        "judge": "offline:similarity_judge:demo-alpaca",
        "generator": "offline:retrieval:demo-alpaca",
    },
    "student": {"model": "builtin:tiny", "finetune": "lora"},
    "params": {"rounds": 2, "new_per_round": 40},
    "review": {"hard_verdicts": "all", "generated": "sample:0.2"},
    "budget": {"usd": 5},
    "seed": 7,
}
TAPIR = {
    "name": "tapir-demo",
    "recipe": "tapir",
    "dataset": "demo-alpaca",
    "endpoints": {
        "teacher": {"base_url": "http://127.0.0.1:8001/v1", "model": "teacher-model", "api_key_env": "VLLM_API_KEY"},
        "judge": "judge-endpoint",
        "generator": "offline:retrieval:demo-alpaca",
    },
    "params": {"seeds_per_round": 50, "ratios": {"Math": 0.5, "Reasoning": 0.25, "Others": 0.25}},
}
STEP_BY_STEP = {
    "name": "sbs-demo",
    "recipe": "step_by_step",
    "dataset": "demo-svamp",
    "endpoints": {"teacher": "offline:replay:demo-svamp"},
    "params": {"dataset_kind": "svamp"},
    "student": {"model": "builtin:tiny", "finetune": "full", "epochs": 2},
}
MOS = {
    "name": "mos-demo",
    "recipe": "mos",
    "datasets": [{"name": "demo-svamp"}, {"name": "demo-cqa", "weight": 2}],
    "params": {"reward": "diff", "smooth": True},
}
ALL = {"lion": LION, "tapir": TAPIR, "step_by_step": STEP_BY_STEP, "mos": MOS}


def patched(base: dict, patch: dict) -> dict:
    """A deep copy of base with patch merged in (mappings merge; DELETE removes a key)."""
    result = copy.deepcopy(base)

    def merge(into: dict, changes: dict) -> None:
        for key, value in changes.items():
            if value is DELETE:
                into.pop(key, None)
            elif isinstance(value, Replace):
                into[key] = copy.deepcopy(value.value)
            elif isinstance(value, dict) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = copy.deepcopy(value)

    merge(result, patch)
    return result
