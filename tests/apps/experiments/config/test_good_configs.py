"""Good configs: every recipe parses, its canonical form round-trips, and the hash means "same experiment"."""

import json
from decimal import Decimal

import pytest

from apps.experiments.config import DatasetRef, EndpointRef, parse_config
from tests.apps.experiments.config.samples import ALL, LION, MOS, STEP_BY_STEP, TAPIR, Replace, patched
from workers.algorithms.discrimination import DiscriminationConfig
from workers.algorithms.mos.scorer import MoSConfig
from workers.algorithms.novelty import NoveltyConfig
from workers.algorithms.resampling import TAPIR_TASK_RATIOS, ResamplingConfig
from workers.algorithms.step_by_step.examples import StepByStepConfig

ISSUE_EXAMPLE = """\
name: lion-demo
recipe: lion                     # lion | tapir | step_by_step | mos
dataset: demo-alpaca             # seed dataset; mos takes a list under datasets: [{name, weight?}]
eval_dataset: demo-eval          # held-out instructions for evaluation (optional)
endpoints:                       # by name, or inline (created or updated as LLMEndpoint rows)
  teacher: {base_url: https://api.openai.com/v1, model: gpt-4o, api_key_env: OPENAI_API_KEY}
  judge: teacher-endpoint-name
  generator: {base_url: http://127.0.0.1:8001/v1, model: qwen2.5-72b-instruct, api_key_env: VLLM_API_KEY}
  student: {base_url: http://127.0.0.1:8002/v1, model: my-student}   # optional: a served student
student: {model: builtin:tiny, finetune: full}      # any HF path or id; lora | full
params: {rounds: 3, tau: 1.0, new_per_round: 6000, hard_easy_ratio: 1.0, rouge_threshold: 0.7}
review: {hard_verdicts: all, generated: sample:0.1}   # gates
budget: {usd: 50}
seed: 1234
"""


@pytest.mark.parametrize("recipe", list(ALL))
def test_each_recipe_round_trips_through_its_canonical_form(recipe):
    config = parse_config(ALL[recipe])
    canonical = config.to_dict()
    json.dumps(canonical, allow_nan=False)  # JSON-safe, strictly
    again = parse_config(canonical)
    assert again == config
    assert again.hash == config.hash
    assert again.to_dict() == canonical
    assert parse_config(json.loads(json.dumps(canonical))).hash == config.hash
    assert len(config.hash) == 64


def test_the_issues_example_parses_with_every_default_filled_in():
    config = parse_config(ISSUE_EXAMPLE, filename="lion.yaml")
    assert config.recipe == "lion"
    assert config.datasets == (DatasetRef("demo-alpaca", "seed"), DatasetRef("demo-eval", "eval"))
    assert config.endpoints["judge"] == EndpointRef(name="teacher-endpoint-name")
    teacher = config.endpoints["teacher"].inline
    assert teacher["model"] == "gpt-4o" and teacher["api_key_env"] == "OPENAI_API_KEY"
    assert teacher["max_concurrency"] == 8 and teacher["price_input_per_mtok"] == "0.000000"
    assert config.student["finetune"] == "full"
    assert config.review["hard_verdicts"] == {"mode": "all", "fraction": 1.0}
    assert config.review["generated"] == {"mode": "sample", "fraction": 0.1}
    assert config.budget == {"usd": Decimal("50.0000"), "tokens": None}
    assert config.to_dict()["budget"] == {"usd": "50.0000", "tokens": None}
    assert config.seed == 1234


def test_key_order_and_number_spelling_do_not_change_the_hash():
    config = parse_config(LION)
    reordered = dict(reversed(list(LION.items())))
    reordered["params"] = {"new_per_round": 40.0, "rounds": 2.0, "tau": 1}  # 1 vs 1.0, 2 vs 2.0
    reordered["budget"] = {"usd": "5.00"}
    reordered["review"] = {"generated": {"mode": "sample", "fraction": 0.2}, "hard_verdicts": {"mode": "all"}}
    assert parse_config(reordered).hash == config.hash
    # writing a default out changes nothing either
    assert parse_config(patched(LION, {"params": {"tau": 1.0, "rouge_threshold": 0.7}})).hash == config.hash


@pytest.mark.parametrize(
    "patch",
    [
        {"params": {"tau": 1.5}},
        {"params": {"hard_rule": "gap > tau"}},
        {"seed": 8},
        {"student": {"lora_r": 8}},
        {"review": {"generated": "all"}},
        {"budget": {"usd": 6}},
        {"endpoints": {"judge": "another-judge"}},
        {"eval_dataset": None},
        {"name": "lion-demo-2"},
    ],
)
def test_a_changed_value_changes_the_hash(patch):
    assert parse_config(patched(LION, patch)).hash != parse_config(LION).hash


def test_lion_defaults_are_the_papers():
    params = parse_config(patched(LION, {"params": Replace({})})).params
    assert params["tau"] == 1.0 == DiscriminationConfig().tau
    assert params["hard_rule"] == "gap >= tau"
    assert params["rouge_threshold"] == 0.7 == NoveltyConfig().threshold
    assert params["new_per_round"] == 6000 and params["hard_easy_ratio"] == 1.0
    assert params["rounds"] == 3 and params["batch_size"] == 256 and params["nearest_floor"] == 0.5


def test_tapir_defaults_and_the_local_classifier():
    config = parse_config(patched(TAPIR, {"params": Replace({})}))
    params = config.params
    assert params["hard_rule"] == "gap > threshold" and params["hard_threshold"] == 1.0
    assert (params["alpha0"], params["delta"], params["rounds"]) == (0.3, 0.2, 3)
    assert params["ratios"] == dict(TAPIR_TASK_RATIOS)
    assert params["rouge_threshold"] == 0.7 and params["classifier_min_confidence"] == 0.5
    assert params["style"] == "rewrite" and params["expansions_per_seed"] == 1
    assert config.endpoints["classifier"].is_local_classifier
    assert config.to_dict()["endpoints"]["classifier"] == "offline:task-classifier"
    assert set(config.review) == {"hard_verdicts", "task_labels", "generated", "rewrites"}


def test_step_by_step_defaults_are_the_papers_and_examples_follow_the_dataset_kind():
    config = parse_config(STEP_BY_STEP)
    assert config.params["alpha"] == 0.5 and config.params["label_source"] == "gold"
    assert config.params["drop_mismatched"] is False and config.params["examples"] == "arithmetic"
    assert config.review == {"rationales": {"mode": "sample", "fraction": 0.1}}
    cqa = parse_config(patched(STEP_BY_STEP, {"params": {"dataset_kind": "cqa"}}))
    assert cqa.params["examples"] == "multiple_choice"
    chosen = parse_config(patched(STEP_BY_STEP, {"params": {"examples": "generic"}}))
    assert chosen.params["examples"] == "generic"


def test_mos_datasets_target_and_temperature():
    config = parse_config(patched(MOS, {"params": {"target": "demo-cqa", "tau": "inf"}}))
    assert config.datasets == (DatasetRef("demo-svamp", "skill"), DatasetRef("demo-cqa", "target", 2.0))
    assert config.params["tau"] == "inf"
    assert config.params["beta"] == 0.9 and config.params["update_every"] == 100
    assert config.algorithm_configs()["mos"] == MoSConfig(reward="diff", smooth=True, target=1, seed=0)
    assert parse_config(config.to_dict()) == config
    yaml_inf = "name: m\nrecipe: mos\ndatasets: [a, b]\nparams: {tau: .inf}\n"
    assert parse_config(yaml_inf).params["tau"] == "inf"
    teacher = parse_config(patched(MOS, {"params": {"teacher_answers": True}, "endpoints": {"teacher": "t"}}))
    assert teacher.endpoints["teacher"].name == "t"


def test_algorithm_configs_carry_the_params():
    lion = parse_config(patched(LION, {"params": {"tau": 2, "rouge_threshold": 0.6}})).algorithm_configs()
    assert lion["discrimination"] == DiscriminationConfig(tau=2.0)
    assert lion["novelty"] == NoveltyConfig(threshold=0.6)
    tapir = parse_config(patched(TAPIR, {"seed": 5})).algorithm_configs()
    assert tapir["resampling"] == ResamplingConfig(
        ratios={"Math": 0.5, "Reasoning": 0.25, "Others": 0.25}, total=None, seed=5
    )
    sbs = parse_config(patched(STEP_BY_STEP, {"params": {"style": "causal"}})).algorithm_configs()
    assert sbs["step_by_step"] == StepByStepConfig(style="causal")


def test_shorthands_and_short_forms():
    config = parse_config(patched(LION, {"student": "builtin:smollm2-135m"}))
    assert config.student["model"] == "builtin:smollm2-135m" and config.student["finetune"] == "lora"
    teacher = config.endpoints["teacher"]
    assert teacher.inline == {"backend": "offline_replay", "offline_dataset": "demo-alpaca"}
    assert teacher.shorthand == "offline:replay:demo-alpaca" and teacher.is_offline
    assert parse_config(patched(MOS, {"datasets": ["a", "b"]})).datasets == (
        DatasetRef("a", "skill"),
        DatasetRef("b", "skill"),
    )
