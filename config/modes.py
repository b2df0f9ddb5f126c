"""Which run mode is active, derived from the environment alone (no Django imports).

The embedded default (SQLite under var/, a file-system Celery broker) runs when DATABASE_URL and
CELERY_BROKER_URL are unset; production mode needs both. Nothing ever falls back silently from one to
the other: settings refuse to start on a half-configured environment.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    return Path(os.environ.get("RETORT_VAR_DIR", BASE_DIR / "var")).resolve()


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe for logs and pages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@dataclass(frozen=True)
class RunMode:
    name: str  # "embedded" or "production"
    database: str
    broker: str

    @property
    def is_embedded(self) -> bool:
        return self.name == "embedded"

    def describe(self) -> str:
        return f"{self.name} mode — database: {self.database}; Celery broker: {self.broker}"


def sqlite_path() -> Path:
    return Path(os.environ.get("RETORT_SQLITE_PATH", var_dir() / "retort.sqlite3"))


def embedded_broker_dir() -> Path:
    return var_dir() / "broker"


def current_mode() -> RunMode:
    database_url = os.environ.get("DATABASE_URL", "").strip()
    broker_url = os.environ.get("CELERY_BROKER_URL", "").strip()
    if database_url and broker_url:
        return RunMode("production", redact_url(database_url), redact_url(broker_url))
    if not database_url and not broker_url:
        return RunMode(
            "embedded",
            f"SQLite file {sqlite_path()}",
            f"file-system transport in {embedded_broker_dir()}",
        )
    missing = "CELERY_BROKER_URL" if database_url else "DATABASE_URL"
    given = "DATABASE_URL" if database_url else "CELERY_BROKER_URL"
    raise RuntimeError(
        f"{given} is set but {missing} is not. Production mode needs both; the embedded default needs "
        f"neither. Retort does not mix modes or fall back silently."
    )
