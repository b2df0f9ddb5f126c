"""Shared set-up for benchmarks: a throw-away PostgreSQL database and Django configured against it."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"
SHARED = Path(os.environ.get("RETORT_SHARED_DATA", REPO.parent / "shared" / "data"))


def use_bench_database(name: str = "retort_bench") -> str:
    """Point Django at a fresh PostgreSQL database (DATABASE_URL's server, or the local one)."""
    import psycopg

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    server, _, _ = base.rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{server}/{name}"
    os.environ.update(
        DATABASE_URL=url,
        CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
        SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret-key-bench-only-secret-key-0123456789"),
        ALLOWED_HOSTS="localhost",
        RETORT_VAR_DIR=str(OUT / "var"),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    sys.path.insert(0, str(REPO))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return url


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}"
