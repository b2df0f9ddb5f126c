"""Every task routes to a declared queue, and the settings that keep work from being lost hold."""

import pytest

from config.celery import QUEUES, app, route_by_module


def _our_tasks():
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if name.startswith("apps."))


def test_there_are_tasks_to_check():
    assert "apps.datasets.tasks.run_import_job" in _our_tasks()


@pytest.mark.parametrize("name", _our_tasks())
def test_every_task_routes_to_a_declared_queue(name):
    assert route_by_module(name, (), {}, {})["queue"] in QUEUES


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
    if name.startswith("apps.training.tasks."):
        assert task.time_limit is None and task.soft_time_limit is None, name
    else:
        assert task.soft_time_limit and task.time_limit and task.time_limit > task.soft_time_limit, name
