"""Fixtures for the engine's tests: the local OpenAI-compatible server, seed data, a Lion config, and a
driver that does in this process what the Celery workers do (advance, run the endpoints, train)."""

import itertools

import pytest

from apps.experiments import engine
from apps.experiments.models import Experiment
from apps.llm.models import LLMCall, LLMEndpoint
from apps.training.models import JobStatus, TrainingJob
from tests.apps.llm.conftest import drain
from tests.factories import DatasetFactory, InstructionFactory
from tests.llm_server.server import ServerThread

_names = itertools.count()

SEED_TEXTS = [
    "Explain how a rainbow forms after a summer storm.",
    "Write a limerick about a cat who learns to code in Python.",
    "List three differences between mitosis and meiosis.",
    "Translate the sentence 'the library opens at nine' into French.",
    "Summarise the causes of the First World War in two sentences.",
    "Give a recipe for a vegetarian lasagne with spinach.",
    "Describe the rules of chess for a complete beginner.",
    "What is the derivative of x squared times the sine of x?",
    "Suggest five names for a bakery that sells sourdough bread.",
    "Compare renting and buying a house for a young family.",
    "Explain what a hash table is and when to use one.",
    "Write a short motivational note for a marathon runner.",
]


@pytest.fixture
def llm_server():
    with ServerThread() as server:
        yield server


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setenv("RETORT_LLM_RETRY_BASE_S", "0.01")
    monkeypatch.setenv("RETORT_LLM_RETRY_MAX_S", "0.05")


@pytest.fixture(autouse=True)
def _training_root(tmp_path, settings):
    settings.RETORT_TRAINING_ROOT = tmp_path / "training"


def seed_dataset(n: int = len(SEED_TEXTS), name: str | None = None):
    dataset = DatasetFactory(name=name or f"seeds-{next(_names)}")
    for text in SEED_TEXTS[:n]:
        InstructionFactory(dataset=dataset, text=text)
    dataset.size = n
    dataset.save(update_fields=["size"])
    return dataset


def lion_config(server, dataset, **overrides) -> dict:
    name = overrides.pop("name", f"lion-{next(_names)}")

    def endpoint(model):
        return {"base_url": server.url, "model": model, "name": f"{name}-{model}", "max_concurrency": 8}

    config = {
        "name": name,
        "recipe": "lion",
        "dataset": dataset.name,
        "endpoints": {
            "teacher": endpoint("teacher-big"),
            "judge": endpoint("judge-strict"),
            "generator": endpoint("generator-lion"),
            "student": endpoint("student-small"),
        },
        "student": {"model": "builtin:tiny"},
        "params": {"rounds": 2, "new_per_round": 12, "tau": 1.0, "batch_size": 5},
        "review": {"hard_verdicts": "sample:0.25", "generated": "sample:0.25"},
        "seed": 1234,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


def succeed_training(experiment) -> int:
    """What a gpu worker would report: the round's queued training jobs succeeded."""
    jobs = list(TrainingJob.objects.filter(round__experiment=experiment, status=JobStatus.QUEUED))
    for job in jobs:
        TrainingJob.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED)
    return len(jobs)


def drive(experiment, *, until=None, train=True, limit=2000):
    """Advance until the engine has nothing to do (or `until(experiment)` holds): run the endpoints'
    pending calls in this process and, with `train`, report queued training jobs as succeeded."""
    for _ in range(limit):
        experiment.refresh_from_db()
        if until is not None and until(experiment):
            return experiment
        if engine.advance(experiment.pk):
            continue
        pending = set(LLMCall.objects.filter(status=LLMCall.Status.PENDING).values_list("endpoint_id", flat=True))
        if pending:
            for endpoint in LLMEndpoint.objects.filter(pk__in=pending):
                drain(endpoint)
            continue
        if train and succeed_training(experiment):
            continue
        experiment.refresh_from_db()
        return experiment
    raise AssertionError(f"the engine kept going for {limit} steps")


def status_of(experiment) -> str:
    return Experiment.objects.get(pk=experiment.pk).status
