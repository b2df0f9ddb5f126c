"""Shared fixtures. Tests mirror the source tree; factories live in tests/factories.py."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path | None:
    """The real public data beside the checkout (../shared/data), or RETORT_SHARED_DATA."""
    candidate = Path(os.environ.get("RETORT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


def shared_data_or_stop() -> Path:
    """The shared data folder; without it the test skips, or fails where RETORT_REQUIRE_SHARED_DATA is set
    (CI sets it: a real-data test that skips there would pass unseen)."""
    path = shared_data_dir()
    if path is None:
        where = os.environ.get("RETORT_SHARED_DATA") or "../shared/data"
        if os.environ.get("RETORT_REQUIRE_SHARED_DATA", "") not in ("", "0"):
            pytest.fail(f"RETORT_REQUIRE_SHARED_DATA is set but {where} is not a folder (set RETORT_SHARED_DATA)")
        pytest.skip(f"{where} is not beside this checkout (set RETORT_SHARED_DATA); real-data tests skipped")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return shared_data_or_stop()


@pytest.fixture
def client_for(client):
    """A logged-in Django test client for a new user holding `role` (None: logged in, no role)."""
    from tests.factories import user_with_role

    def make(role):
        user = user_with_role(role)
        client.force_login(user)
        client.user = user
        return client

    return make


@pytest.fixture
def api_for():
    """A DRF client authenticated by token for a new user holding `role`."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from tests.factories import user_with_role

    def make(role):
        user = user_with_role(role)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
        api.user = user
        return api

    return make


@pytest.fixture(autouse=True)
def _empty_cache():
    """Heartbeats and progress live in the cache; ids restart with every test database."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session", autouse=True)
def _plain_static_files():
    """Production mode names static files by their hash from collectstatic's manifest; the browser
    tests' live server serves them from the source folders by their plain names. Set before the live
    server (a session fixture too, set up after autouse ones) builds its handler."""
    from django.conf import settings

    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
