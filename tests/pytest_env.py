"""Loaded with `-p` before Django settings: tests get their own var/ folder (SQLite file, broker
folders, cache), so a running `make run` never sees test tasks and tests never see its data."""

import os
import re
from pathlib import Path

# Under pytest-xdist (`make test` runs two processes) each process gets its own var/ folder and, on Redis,
# its own database number for the broker and the cache: the real Celery workers a test starts must only
# ever see that process's tasks, and one process's cache.clear() must not empty the other's queues.
_XDIST = os.environ.get("PYTEST_XDIST_WORKER", "")
_OFFSET = int(_XDIST.removeprefix("gw") or 0) if _XDIST else 0


def _own_redis_db(url: str) -> str:
    match = re.fullmatch(r"(rediss?://[^/]*)(?:/(\d*))?", url)
    if not match or not _OFFSET:
        return url
    return f"{match.group(1)}/{(int(match.group(2) or 0) + _OFFSET) % 16}"


for _name in ("CELERY_BROKER_URL", "CACHE_URL"):
    if os.environ.get(_name, "").startswith("redis"):
        os.environ[_name] = _own_redis_db(os.environ[_name])

_VAR = "test" + (f"-{_XDIST}" if _XDIST else "")
if _XDIST and os.environ.get("RETORT_VAR_DIR"):
    # A var folder given from outside is shared by both processes; each still needs its own SQLite file.
    os.environ["RETORT_VAR_DIR"] = str(Path(os.environ["RETORT_VAR_DIR"]) / _XDIST)
os.environ.setdefault("RETORT_VAR_DIR", str(Path(__file__).resolve().parent.parent / "var" / _VAR))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Test clients and the browser's live server speak plain HTTP; production mode would redirect to HTTPS.
# Set here, before settings load, because the live server's middleware is built before any fixture runs.
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
