"""Every task routes to the queue it is meant for, and the settings that keep work from being lost hold."""

import pytest

from config.celery import QUEUES, app, route_by_module

# Every task of the Celery app and the queue it must land on. A task missing here fails the test, so a new
# task's queue is a decision someone wrote down, not whatever the fallback gives it.
EXPECTED_QUEUE = {
    "apps.core.tasks.recover_stale_work": "default",
    "apps.datasets.tasks.run_import_job": "default",
    "apps.experiments.tasks.advance_experiment": "default",
    "apps.experiments.tasks.run_export_job": "default",
    "apps.llm.tasks.process_pending_calls": "llm",
    "apps.llm.tasks.resume_pending_calls": "llm",
    "apps.llm.tasks.retrain_task_classifier": "llm",
    "apps.training.tasks.run_generation_job": "gpu",
    "apps.training.tasks.run_merge_job": "gpu",
    "apps.training.tasks.run_training_job": "gpu",
}


def _our_tasks():
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if not name.startswith("celery."))


def _queue_of(name: str) -> str:
    """The queue Celery's own router picks for a task sent by name (task_routes, then the default)."""
    return app.amqp.router.route({}, name, args=(), kwargs={})["queue"].name


def test_every_task_has_an_expected_queue():
    tasks = _our_tasks()
    missing = sorted(set(tasks) - set(EXPECTED_QUEUE))
    gone = sorted(set(EXPECTED_QUEUE) - set(tasks))
    assert not missing, f"tasks with no expected queue in EXPECTED_QUEUE: {missing}"
    assert not gone, f"EXPECTED_QUEUE names tasks the Celery app does not register: {gone}"


@pytest.mark.parametrize("name", sorted(EXPECTED_QUEUE))
def test_every_task_routes_to_its_queue(name):
    assert EXPECTED_QUEUE[name] in QUEUES
    assert _queue_of(name) == EXPECTED_QUEUE[name]


def test_the_router_is_what_decides():
    """The check above reads the real router: a task of a gpu module would not pass as `default`."""
    assert _queue_of("apps.training.tasks.some_future_task") == "gpu"
    assert _queue_of("apps.judging.tasks.some_future_task") == "llm"


def test_declared_queues_match_the_design():
    assert [q.name for q in app.conf.task_queues] == ["default", "llm", "gpu"]


def test_routing_by_module():
    assert route_by_module("apps.llm.tasks.x", (), {}, {})["queue"] == "llm"
    assert route_by_module("apps.training.tasks.x", (), {}, {})["queue"] == "gpu"
    assert route_by_module("apps.datasets.tasks.x", (), {}, {})["queue"] == "default"


def test_work_is_not_lost_and_long_tasks_do_not_hoard():
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert not conf.task_always_eager


@pytest.mark.parametrize("name", _our_tasks())
def test_time_limits_everywhere_but_training(name):
    task = app.tasks[name]
    assert app.conf.task_time_limit is None and app.conf.task_soft_time_limit is None
    if name == "apps.training.tasks.run_training_job":  # runs for days; generation has its own limits
        assert task.time_limit is None and task.soft_time_limit is None, name
    else:
        assert task.soft_time_limit and task.time_limit and task.time_limit > task.soft_time_limit, name
