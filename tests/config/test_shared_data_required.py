"""The real-data tests skip where ../shared/data is missing, and fail instead where CI requires it."""

import pytest

from tests.conftest import shared_data_or_stop


def test_missing_data_skips_by_default(monkeypatch, tmp_path):
    monkeypatch.setenv("RETORT_SHARED_DATA", str(tmp_path / "absent"))
    monkeypatch.delenv("RETORT_REQUIRE_SHARED_DATA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="real-data tests skipped"):
        shared_data_or_stop()


def test_missing_data_fails_where_required(monkeypatch, tmp_path):
    monkeypatch.setenv("RETORT_SHARED_DATA", str(tmp_path / "absent"))
    monkeypatch.setenv("RETORT_REQUIRE_SHARED_DATA", "1")
    with pytest.raises(pytest.fail.Exception, match=r"RETORT_REQUIRE_SHARED_DATA is set but .*absent"):
        shared_data_or_stop()


def test_present_data_is_returned_either_way(monkeypatch, tmp_path):
    monkeypatch.setenv("RETORT_SHARED_DATA", str(tmp_path))
    for required in ("", "1"):
        monkeypatch.setenv("RETORT_REQUIRE_SHARED_DATA", required)
        assert shared_data_or_stop() == tmp_path


def test_ci_requires_the_shared_data():
    """.ci/run sets the variable for its full run, as it does RETORT_REQUIRE_BROWSER."""
    from tests.conftest import REPO_ROOT

    script = (REPO_ROOT / ".ci" / "run").read_text()
    full_run = script[script.index("=== make test against PostgreSQL and Redis ===") :]
    assert "RETORT_REQUIRE_SHARED_DATA=1" in full_run.split("make test", 2)[1]
