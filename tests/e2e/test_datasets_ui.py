"""A person logs in, browses the demo dataset, filters it, and imports a file that a real worker runs."""

import json

import pytest

from apps.datasets.demo import demo_datasets_load
from tests.conftest import REPO_ROOT
from tests.factories import TEST_PASSWORD, UserFactory
from tests.integration.worker import WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = REPO_ROOT / "var" / "test" / "screenshots"


def _login(page, base, username):
    page.goto(f"{base}/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_browse_filter_and_import(page, live_server, tmp_path):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    demo_datasets_load()
    admin = UserFactory(is_superuser=True, is_staff=True)
    base = live_server.url
    _login(page, base, admin.username)
    assert "embedded mode" in page.inner_text("[data-testid=run-mode]") or "production mode" in page.inner_text(
        "[data-testid=run-mode]"
    )

    page.click("text=Datasets")
    page.click("text=demo-self-instruct-seeds")
    assert page.locator("#instruction-rows tbody tr").count() == 50
    page.screenshot(path=SCREENSHOTS / "dataset.png", full_page=True)
    page.click("text=next page »")
    assert page.locator("#instruction-rows tbody tr").count() == 50

    page.goto(page.url.split("?")[0])
    page.fill("#id_q", "breakfast")  # HTMX swaps the rows as the person types
    page.wait_for_function("document.querySelectorAll('#instruction-rows tbody tr').length < 50")
    texts = page.locator("#instruction-rows tbody tr td:nth-child(2)").all_inner_texts()
    assert texts and all("breakfast" in t.lower() for t in texts)

    upload = tmp_path / "mine.jsonl"
    upload.write_text("".join(json.dumps({"instruction": f"Describe planet {i}."}) + "\n" for i in range(40)))
    worker = WorkerProcess(tmp_path).wait_ready()
    try:
        page.click("text=Import")
        page.set_input_files("#id_file", str(upload))
        page.fill("#id_dataset_name", "planets")
        page.click("button:has-text('Import')")
        status = page.locator("[data-testid=import-status]")
        status.wait_for()
        page.wait_for_selector("[data-testid=import-status][data-status=succeeded]", timeout=60_000)
    finally:
        worker.stop()
    assert "40 imported" in status.inner_text()
    page.screenshot(path=SCREENSHOTS / "import.png", full_page=True)
    page.click("[data-testid=import-status] >> text=planets")
    assert page.locator("#instruction-rows tbody tr").count() == 40


def test_a_viewer_sees_no_import_link_and_is_refused_the_page(page, live_server):
    from apps.core.roles import Role

    viewer = UserFactory(role=Role.VIEWER)
    _login(page, live_server.url, viewer.username)
    assert page.locator("nav >> text=Import").count() == 0
    response = page.goto(f"{live_server.url}/datasets/import/")
    assert response.status == 403
