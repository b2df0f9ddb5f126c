"""Run-mode selection is read from the environment at start-up, so each case runs manage.py afresh."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

PRODUCTION = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/postgres",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "SECRET_KEY": "a-long-random-production-secret-" + "x" * 40,
    "ALLOWED_HOSTS": "retort.example.org",
}


def manage(*args, env_overrides: dict, tmp_path) -> subprocess.CompletedProcess:
    controlled = {
        *PRODUCTION,
        "CACHE_URL",
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_PRELOAD",
        "SECURE_HSTS_SECONDS",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
    }
    env = {k: v for k, v in os.environ.items() if k not in controlled}
    env.update({"RETORT_VAR_DIR": str(tmp_path), **env_overrides})
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_embedded_default_says_so(tmp_path):
    result = manage("check_services", env_overrides={}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "embedded mode" in result.stdout
    assert "SQLite" in result.stdout and "file-system transport" in result.stdout


def test_half_configured_environment_is_refused(tmp_path):
    result = manage("check", env_overrides={"DATABASE_URL": PRODUCTION["DATABASE_URL"]}, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "DATABASE_URL is set but CELERY_BROKER_URL is not" in result.stderr


def test_unreachable_database_fails_clearly_and_never_falls_back(tmp_path):
    env = {**PRODUCTION, "DATABASE_URL": "postgres://retort:s3cret-pw@127.0.0.1:1/retort"}
    result = manage("check_services", env_overrides=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "cannot be reached" in result.stderr
    assert "never falls back to SQLite" in result.stderr
    assert "s3cret-pw" not in result.stderr + result.stdout  # the password is redacted
    assert not (tmp_path / "retort.sqlite3").exists()


def test_production_mode_needs_a_secret_key(tmp_path):
    env = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", env_overrides=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_mode_passes_the_deploy_check(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env_overrides=PRODUCTION, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_mode_reports_postgresql_and_redis(tmp_path):
    result = manage("check_services", env_overrides=PRODUCTION, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "production mode" in result.stdout
    assert "postgres://postgres@127.0.0.1:5432/postgres" in result.stdout
