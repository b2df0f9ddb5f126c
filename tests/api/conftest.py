"""The API tests' world, built once per module inside a transaction that is rolled back when the module
ends; each test runs in a savepoint of it (pytest-django), so what one test changes the next never sees."""

import os

import pytest
from django.db import transaction
from django.test import override_settings

from tests.api.world import build_world
from tests.llm_server.server import ServerThread


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    root = tmp_path_factory.mktemp("api-world")
    saved = {key: os.environ.get(key) for key in ("RETORT_LLM_RETRY_BASE_S", "RETORT_LLM_RETRY_MAX_S")}
    os.environ.update(RETORT_LLM_RETRY_BASE_S="0.01", RETORT_LLM_RETRY_MAX_S="0.05")
    try:
        with (
            ServerThread() as server,
            override_settings(RETORT_TRAINING_ROOT=root / "training", MEDIA_ROOT=root / "media"),
            django_db_blocker.unblock(),
            transaction.atomic(),
        ):
            built = build_world(server, root)
            built.server = server
            yield built
            transaction.set_rollback(True)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
