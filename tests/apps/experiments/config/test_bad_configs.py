"""Bad configs: each fails with the bad key's exact path and says what was expected and what was got."""

import pytest

from apps.experiments.config import ConfigError, parse_config
from tests.apps.experiments.config.samples import DELETE, LION, MOS, STEP_BY_STEP, TAPIR, Replace, patched

SECRET_TEACHER = {"base_url": "https://api.example.com/v1", "model": "m", "api_key_env": "SECRET_KEY"}

# (id, base config, patch, expected path, words the problem must contain)
CASES = [
    # unknown keys, at every level, with the nearest allowed key suggested
    ("unknown-top-level", LION, {"datset": "x"}, "datset", ['unknown key (did you mean "dataset"?)']),
    ("unknown-top-level-far", LION, {"colour": "red"}, "colour", ["unknown key", "allowed keys are name, recipe"]),
    ("unknown-param", LION, {"params": {"taus": 1.0}}, "params.taus", ['did you mean "tau"?']),
    ("other-recipes-param", LION, {"params": {"alpha0": 0.3}}, "params.alpha0", ["alpha0 is a parameter of tapir"]),
    ("unknown-student-key", LION, {"student": {"lora_rank": 8}}, "student.lora_rank", ['did you mean "lora_r"?']),
    ("engine-owned-student-key", LION, {"student": {"seed": 3}}, "student.seed", ["top-level seed"]),
    ("unknown-role", LION, {"endpoints": {"techer": "t"}}, "endpoints.techer", ['did you mean "teacher"?']),
    ("unknown-gate", LION, {"review": {"verdicts": "all"}}, "review.verdicts", ['did you mean "hard_verdicts"?']),
    ("ignored-gate-bad-value", LION, {"review": {"rewrites": "most"}}, "review.rewrites", ['got "most"']),
    ("unknown-budget-key", LION, {"budget": {"dollars": 5}}, "budget.dollars", ["budget takes usd, tokens"]),
    (
        "unknown-inline-key",
        TAPIR,
        {"endpoints": {"teacher": {"api_key": "sk-123"}}},
        "endpoints.teacher.api_key",
        ['did you mean "api_key_env"?'],
    ),
    (
        "unknown-eval-key",
        LION,
        {"params": {"eval": {"limit": 3}}},
        "params.eval.limit",
        ["params.eval takes max_items"],
    ),
    # wrong types
    ("tau-text", LION, {"params": {"tau": "high"}}, "params.tau", ['expected a number, got "high"']),
    ("rounds-fraction", LION, {"params": {"rounds": 2.5}}, "params.rounds", ["expected a whole number", "got 2.5"]),
    ("rounds-bool", LION, {"params": {"rounds": True}}, "params.rounds", ["expected a whole number, got true"]),
    ("params-not-mapping", LION, {"params": [1, 2]}, "params", ["expected a mapping of parameters, got a list"]),
    ("student-epochs-text", LION, {"student": {"epochs": "many"}}, "student.epochs", ['got "many"']),
    ("seed-text", LION, {"seed": "abc"}, "seed", ['expected a whole number, got "abc"']),
    (
        "drop-mismatched-text",
        STEP_BY_STEP,
        {"params": {"drop_mismatched": "yes"}},
        "params.drop_mismatched",
        ["true or false"],
    ),
    ("name-number", LION, {"name": 12}, "name", ["expected text, got 12"]),
    # negative and absurd numbers
    ("rounds-zero", LION, {"params": {"rounds": 0}}, "params.rounds", ["from 1 to 100", "got 0"]),
    ("rounds-huge", LION, {"params": {"rounds": 10_000}}, "params.rounds", ["from 1 to 100", "got 10000"]),
    ("tau-negative", LION, {"params": {"tau": -1}}, "params.tau", ["from 0 to 9", "got -1"]),
    ("rouge-above-one", LION, {"params": {"rouge_threshold": 1.5}}, "params.rouge_threshold", ["[0.0, 1.0]", "1.5"]),
    ("new-per-round-huge", LION, {"params": {"new_per_round": 10**9}}, "params.new_per_round", ["got 1000000000"]),
    ("alpha0-above-one", TAPIR, {"params": {"alpha0": 2}}, "params.alpha0", ["[0.0, 1.0]", "got 2"]),
    ("sbs-alpha-above-one", STEP_BY_STEP, {"params": {"alpha": 1.5}}, "params.alpha", ["[0.0, 1.0]"]),
    ("mos-temperature-zero", MOS, {"params": {"tau": 0}}, "params.tau", ["above 0", "got 0"]),
    ("mos-beta", MOS, {"params": {"beta": 1.2}}, "params.beta", ["[0.0, 1.0]"]),
    ("eval-max-items-zero", LION, {"params": {"eval": {"max_items": 0}}}, "params.eval.max_items", ["at least 1"]),
    ("student-lr", LION, {"student": {"learning_rate": 1.5}}, "student.learning_rate", ["(0, 1)", "1.5"]),
    ("student-max-length", LION, {"student": {"max_length": 8}}, "student.max_length", ["from 16 to 32768"]),
    ("student-batch", LION, {"student": {"batch_size": 0}}, "student.batch_size", ["from 1 to 65536"]),
    ("student-lora-alpha", LION, {"student": {"lora_alpha": 0}}, "student.lora_alpha", ["got 0"]),
    ("student-lora-r", LION, {"student": {"lora_r": -4}}, "student.lora_r", ["got -4"]),
    ("budget-negative", LION, {"budget": {"usd": -5}}, "budget.usd", ["from 0", "got -5"]),
    ("budget-text", LION, {"budget": {"usd": "lots"}}, "budget.usd", ['expected an amount in US dollars, got "lots"']),
    ("budget-tokens", LION, {"budget": {"tokens": -1}}, "budget.tokens", ["got -1"]),
    ("seed-negative", LION, {"seed": -1}, "seed", ["got -1"]),
    ("seed-beyond-32-bits", LION, {"seed": 2**32}, "seed", ["from 0 to 4294967295", "got 4294967296"]),
    (
        "mos-dataset-weight",
        MOS,
        {"datasets": [{"name": "a"}, {"name": "b", "weight": -1}]},
        "datasets[1].weight",
        ["above 0"],
    ),
    # choices
    ("unknown-recipe", LION, {"recipe": "lyon"}, "recipe", ['did you mean "lion"?']),
    ("bad-finetune", LION, {"student": {"finetune": "qlora"}}, "student.finetune", ['"lora", "full"', 'got "qlora"']),
    ("bad-dataset-kind", STEP_BY_STEP, {"params": {"dataset_kind": "gsm8k"}}, "params.dataset_kind", ['"svamp"']),
    ("bad-reward", MOS, {"params": {"reward": "kl"}}, "params.reward", ['"cossim", "diff"']),
    ("bad-bf16", LION, {"student": {"bf16": "maybe"}}, "student.bf16", ['"auto", true or false']),
    # ratios
    (
        "ratios-do-not-sum",
        TAPIR,
        {"params": {"ratios": Replace({"Math": 0.5, "Reasoning": 0.4})}},
        "params.ratios",
        ["must sum to 1", "sum to 0.9"],
    ),
    (
        "ratios-unknown-category",
        TAPIR,
        {"params": {"ratios": Replace({"Maths": 0.5, "Reasoning": 0.5})}},
        "params.ratios.Maths",
        ['unknown task category (did you mean "Math"?)'],
    ),
    (
        "ratio-out-of-range",
        TAPIR,
        {"params": {"ratios": Replace({"Math": -0.5, "Reasoning": 1.5})}},
        "params.ratios.Math",
        ["[0, 1]", "-0.5"],
    ),
    ("ratios-not-mapping", TAPIR, {"params": {"ratios": [0.5, 0.5]}}, "params.ratios", ["mapping of task category"]),
    # review gates and hard rules
    ("review-mode", LION, {"review": {"hard_verdicts": "some"}}, "review.hard_verdicts", ['got "some"']),
    ("review-fraction", LION, {"review": {"generated": "sample:2"}}, "review.generated", ["from 0 to 1", '"sample:2"']),
    (
        "review-fraction-mapping",
        LION,
        {"review": {"generated": {"mode": "sample", "fraction": 2}}},
        "review.generated",
        ["from 0 to 1", "got 2"],
    ),
    ("review-sample-text", LION, {"review": {"generated": "sample:half"}}, "review.generated", ['"sample:half"']),
    ("lion-hard-rule", LION, {"params": {"hard_rule": "gap > threshold"}}, "params.hard_rule", ['"gap >= tau"']),
    ("tapir-hard-rule", TAPIR, {"params": {"hard_rule": "gap >= tau"}}, "params.hard_rule", ['"gap > threshold"']),
    # recipes without their required keys
    (
        "lion-no-generator",
        LION,
        {"endpoints": {"generator": DELETE}},
        "endpoints.generator",
        ["lion needs a generator"],
    ),
    ("lion-no-judge", LION, {"endpoints": {"judge": None}}, "endpoints.judge", ["lion needs a judge"]),
    ("tapir-no-generator", TAPIR, {"endpoints": {"generator": DELETE}}, "endpoints.generator", ["tapir needs"]),
    ("sbs-rounds", STEP_BY_STEP, {"params": {"rounds": 3}}, "params.rounds", ["expected 1 (1: the method is one pass"]),
    ("mos-rounds", MOS, {"params": {"rounds": 2}}, "params.rounds", ["one pass over its data", "got 2"]),
    ("sbs-no-teacher", STEP_BY_STEP, {"endpoints": DELETE}, "endpoints.teacher", ["step_by_step needs a teacher"]),
    ("mos-one-skill", MOS, {"datasets": [{"name": "demo-svamp"}]}, "datasets", ["at least 2 datasets, got 1"]),
    ("mos-no-datasets", MOS, {"datasets": DELETE}, "datasets", ["mos needs datasets"]),
    ("mos-single-dataset-key", MOS, {"dataset": "demo-svamp"}, "dataset", ["list under datasets"]),
    ("mos-duplicate-skill", MOS, {"datasets": ["a", "a"]}, "datasets[1].name", ['"a" is listed twice']),
    ("mos-teacher-answers", MOS, {"params": {"teacher_answers": True}}, "endpoints.teacher", ["teacher_answers"]),
    ("mos-unknown-target", MOS, {"params": {"target": "demo-gsm"}}, "params.target", ['"demo-svamp", "demo-cqa"']),
    ("lion-no-dataset", LION, {"dataset": DELETE}, "dataset", ["lion needs its seed dataset"]),
    ("lion-several-datasets", LION, {"datasets": ["a", "b"]}, "datasets", ["only mos"]),
    ("no-name", LION, {"name": DELETE}, "name", ["needs a name"]),
    ("no-recipe", LION, {"recipe": DELETE}, "recipe", ["expected one of lion, tapir, step_by_step, mos"]),
    ("eval-is-seed", LION, {"eval_dataset": "demo-alpaca"}, "eval_dataset", ["held-out"]),
    # endpoint references
    (
        "unknown-shorthand",
        LION,
        {"endpoints": {"teacher": "offline:replayy:demo-alpaca"}},
        "endpoints.teacher",
        ["unknown offline backend", 'did you mean "replay"?'],
    ),
    (
        "shorthand-no-dataset",
        LION,
        {"endpoints": {"teacher": "offline:replay:"}},
        "endpoints.teacher",
        ["offline:replay:<dataset>"],
    ),
    (
        "classifier-as-judge",
        LION,
        {"endpoints": {"judge": "offline:task-classifier"}},
        "endpoints.judge",
        ["only be the classifier"],
    ),
    (
        "retrieval-as-teacher",
        LION,
        {"endpoints": {"teacher": "offline:retrieval:x"}},
        "endpoints.teacher",
        ["generator"],
    ),
    (
        "inline-without-model",
        TAPIR,
        {"endpoints": {"judge": {"base_url": "http://127.0.0.1:9/v1"}}},
        "endpoints.judge.model",
        ["needs its model"],
    ),
    (
        "inline-refused-key",
        TAPIR,
        {"endpoints": {"teacher": Replace(SECRET_TEACHER)}},
        "endpoints.teacher.api_key_env",
        ["refused", "SECRET_KEY is one of Retort's own settings"],
    ),
    (
        "inline-not-a-variable",
        TAPIR,
        {"endpoints": {"teacher": {"api_key_env": "sk-live-123"}}},
        "endpoints.teacher.api_key_env",
        ["not an environment variable name"],
    ),
    (
        "inline-bad-url",
        TAPIR,
        {"endpoints": {"teacher": {"base_url": "ftp://x"}}},
        "endpoints.teacher.base_url",
        ["http://"],
    ),
    (
        "inline-price",
        TAPIR,
        {"endpoints": {"teacher": {"price_input_per_mtok": -1}}},
        "endpoints.teacher.price_input_per_mtok",
        ["from 0"],
    ),
    ("endpoint-number", LION, {"endpoints": {"judge": 5}}, "endpoints.judge", ["expected an endpoint's name", "got 5"]),
]


@pytest.mark.parametrize(("base", "patch", "path", "words"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_a_bad_config_fails_with_the_keys_path_and_what_was_wrong(base, patch, path, words):
    with pytest.raises(ConfigError) as caught:
        parse_config(patched(base, patch))
    problems = dict(caught.value.problems)
    assert path in problems, f"{path} not among {list(problems)}"
    for word in words:
        assert word in problems[path], f"{word!r} not in {problems[path]!r}"
    assert f"{path}: {problems[path]}" in str(caught.value).splitlines()


def test_there_are_at_least_thirty_bad_configs_with_distinct_paths():
    assert len(CASES) >= 30
    assert len({case[3] for case in CASES}) >= 30


def test_every_problem_of_a_config_is_reported_at_once():
    bad = patched(
        LION,
        {
            "params": {"tau": "high", "rounds": 0, "rouge_threshold": 1.5},
            "endpoints": {"generator": DELETE},
            "student": {"finetune": "qlora"},
            "review": {"generated": "sample:2"},
            "budget": {"usd": -1},
            "seed": -1,
        },
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(bad)
    paths = [path for path, _ in caught.value.problems]
    assert sorted(paths) == sorted(
        [
            "params.tau",
            "params.rounds",
            "params.rouge_threshold",
            "endpoints.generator",
            "student.finetune",
            "review.generated",
            "budget.usd",
            "seed",
        ]
    )
    assert len(str(caught.value).splitlines()) == 8


def test_an_unknown_recipe_still_reports_the_other_problems():
    with pytest.raises(ConfigError) as caught:
        parse_config(patched(LION, {"recipe": "lyon", "student": {"epochs": 0}, "seed": "x"}))
    assert {path for path, _ in caught.value.problems} == {"recipe", "student.epochs", "seed"}
