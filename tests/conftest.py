"""Shared fixtures. Tests mirror the source tree; factories live in tests/factories.py."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path | None:
    """The real public data beside the checkout (../shared/data), or RETORT_SHARED_DATA."""
    candidate = Path(os.environ.get("RETORT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data is not beside this checkout (set RETORT_SHARED_DATA)")
    return path
