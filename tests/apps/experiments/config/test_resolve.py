"""resolve_config: what a config names must exist; a failed check names every path and creates nothing."""

import dataclasses

import pytest

from apps.datasets.models import Dataset
from apps.experiments.config import ConfigError, EndpointRef, parse_config, resolve_config
from apps.llm.models import LLMEndpoint
from tests.apps.experiments.config.samples import LION, MOS, TAPIR, patched

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, int]:
    return Dataset.objects.count(), LLMEndpoint.objects.count()


def test_unknown_datasets_and_endpoints_fail_with_their_paths_and_create_nothing():
    Dataset.objects.create(name="demo-alpaca")
    LLMEndpoint.objects.create(name="judge-endpoint", base_url="http://127.0.0.1:9/v1", model="j")
    config = parse_config(
        patched(
            TAPIR,
            {
                "dataset": "demo-alpacca",
                "eval_dataset": "demo-eval",
                "endpoints": {"judge": "gpt-4o-judge", "generator": "offline:retrieval:reserve"},
            },
        )
    )
    before = counts()
    with pytest.raises(ConfigError) as caught:
        resolve_config(config)
    problems = dict(caught.value.problems)
    assert problems == {
        "dataset": 'no dataset named "demo-alpacca" (did you mean "demo-alpaca"?)',
        "eval_dataset": 'no dataset named "demo-eval"',
        "endpoints.judge": 'no endpoint named "gpt-4o-judge"',
        "endpoints.generator": 'no dataset named "reserve" (for offline:retrieval:reserve)',
    }
    assert counts() == before


def test_existing_names_resolve_and_inline_endpoints_come_back_as_fields_to_create():
    alpaca = Dataset.objects.create(name="demo-alpaca")
    held_out = Dataset.objects.create(name="demo-eval")
    judge = LLMEndpoint.objects.create(name="judge-endpoint", base_url="http://127.0.0.1:9/v1", model="j")
    config = parse_config(patched(TAPIR, {"eval_dataset": "demo-eval"}))
    before = counts()
    resolved = resolve_config(config)
    assert counts() == before
    assert resolved.datasets == {"seed": [(alpaca, None)], "eval": [(held_out, None)]}
    assert resolved.endpoints["judge"].endpoint == judge
    teacher = resolved.endpoints["teacher"]
    assert teacher.endpoint is None
    assert teacher.create["name"] == "tapir-demo · teacher"
    assert teacher.create["model"] == "teacher-model" and teacher.create["api_key_env"] == "VLLM_API_KEY"
    generator = resolved.endpoints["generator"]
    assert generator.create == {
        "name": "offline:retrieval:demo-alpaca",
        "backend": "offline_retrieval",
        "model": "offline_retrieval",
        "offline_dataset": alpaca,
    }
    assert resolved.endpoints["classifier"].local_classifier
    assert resolved.config is config


def test_an_offline_endpoint_made_for_an_earlier_experiment_is_reused():
    alpaca = Dataset.objects.create(name="demo-alpaca")
    Dataset.objects.create(name="demo-eval")
    made = LLMEndpoint.objects.create(
        name="offline:replay:demo-alpaca", backend="offline_replay", model="offline_replay", offline_dataset=alpaca
    )
    resolved = resolve_config(parse_config(LION))
    assert resolved.endpoints["teacher"].endpoint == made
    assert resolved.endpoints["judge"].endpoint is None


def test_mos_datasets_resolve_in_order_with_weights_and_target():
    svamp = Dataset.objects.create(name="demo-svamp")
    cqa = Dataset.objects.create(name="demo-cqa")
    resolved = resolve_config(parse_config(patched(MOS, {"params": {"target": "demo-cqa"}})))
    assert resolved.datasets == {"skill": [(svamp, None)], "target": [(cqa, 2.0)]}
    with pytest.raises(ConfigError) as caught:
        resolve_config(parse_config(patched(MOS, {"datasets": ["demo-svamp", "demo-gsm"]})))
    assert dict(caught.value.problems) == {"datasets[1].name": 'no dataset named "demo-gsm"'}


def test_a_dataset_another_experiment_generated_is_not_a_seed_dataset():
    from tests.apps.llm.conftest import make_experiment

    experiment = make_experiment()
    Dataset.objects.create(name="other · generated", owner_experiment=experiment)
    Dataset.objects.create(name="demo-eval")
    for name in ("demo-alpaca",):
        Dataset.objects.create(name=name)
    config = parse_config(patched(LION, {"dataset": "other · generated"}))
    with pytest.raises(ConfigError) as caught:
        resolve_config(config)
    assert dict(caught.value.problems) == {
        "dataset": '"other · generated" holds what another experiment generated; pick an imported dataset'
    }


def test_an_inline_endpoint_is_checked_by_the_models_own_validation():
    """A config built around parse_config (a form, code) still meets LLMEndpoint.clean and the key rule."""
    Dataset.objects.create(name="demo-alpaca")
    LLMEndpoint.objects.create(name="judge-endpoint", base_url="http://127.0.0.1:9/v1", model="j")
    config = parse_config(patched(TAPIR, {"endpoints": {"teacher": {"name": "x" * 100}}}))
    assert resolve_config(config).endpoints["teacher"].create["name"] == "x" * 100  # at the model's limit
    teacher = dict(config.endpoints["teacher"].inline, api_key_env="SECRET_KEY", base_url="not a url")
    around = dataclasses.replace(config, endpoints={**config.endpoints, "teacher": EndpointRef(inline=teacher)})
    before = counts()
    with pytest.raises(ConfigError) as caught:
        resolve_config(around)
    problems = dict(caught.value.problems)
    assert problems["endpoints.teacher.api_key_env"].startswith("SECRET_KEY is one of Retort's own settings")
    assert problems["endpoints.teacher.base_url"] == "Enter a valid URL."
    assert counts() == before
