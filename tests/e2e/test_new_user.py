"""What a new user meets, in a real browser: a refusal that explains itself, API docs that work offline,
and a failed import that says plainly what went wrong and what to tick next time."""

import json
from urllib.parse import urlsplit

import pytest

from apps.core.roles import Role
from tests.conftest import REPO_ROOT
from tests.factories import TEST_PASSWORD, UserFactory
from tests.integration.worker import WorkerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = REPO_ROOT / "var" / "test" / "screenshots"


def _login(page, base, username, start="/"):
    """Open `start`, be sent to the login page, log in and land back on `start`."""
    page.goto(f"{base}{start}")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{start}")


def test_a_user_without_a_role_sees_why_and_can_log_out(page, live_server):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    newcomer = UserFactory()
    _login(page, live_server.url, newcomer.username, start="/datasets/")

    refusal = page.locator("[data-testid=error-403]")
    assert refusal.is_visible()
    assert "This needs the viewer role; your account has no role yet." in refusal.inner_text()
    assert page.locator("header.topbar nav >> text=Datasets").is_visible()  # the menu is there
    # Styled: the stylesheet applied (the card's white background, not the browser's default transparent).
    background = page.eval_on_selector("[data-testid=error-403]", "e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(255, 255, 255)"
    page.screenshot(path=SCREENSHOTS / "403-no-role.png", full_page=True)

    page.click("[data-testid=error-403] >> text=Log out and sign in as someone else")
    page.wait_for_url("**/accounts/login/")


def test_a_viewer_on_an_operator_page_is_told_which_role_it_needs(page, live_server):
    viewer = UserFactory(role=Role.VIEWER)
    _login(page, live_server.url, viewer.username)
    response = page.goto(f"{live_server.url}/datasets/import/")
    assert response.status == 403
    reason = page.inner_text("[data-testid=reason]")
    assert reason == "This needs the operator role; your account has the viewer role."
    page.screenshot(path=SCREENSHOTS / "403-viewer.png", full_page=True)


def test_the_api_docs_render_with_no_request_to_another_host(page, live_server):
    viewer = UserFactory(role=Role.VIEWER)
    own_host = urlsplit(live_server.url).netloc
    elsewhere = []

    def only_our_server(route):
        if urlsplit(route.request.url).netloc == own_host:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_our_server)
    _login(page, live_server.url, viewer.username)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Retort API" in page.inner_text(".swagger-ui .info .title")
    page.wait_for_selector(".swagger-ui .opblock")
    paths = page.locator(".swagger-ui .opblock-summary-path").all_inner_texts()
    assert any("/api/v1/imports/" in p for p in paths) and any("/api/v1/datasets/" in p for p in paths)
    page.screenshot(path=SCREENSHOTS / "api-docs.png", full_page=False)
    assert elsewhere == []


def test_a_failed_import_shows_its_errors_and_imports_nothing(page, live_server, tmp_path):
    operator = UserFactory(role=Role.OPERATOR)
    upload = tmp_path / "ideas.jsonl"
    good = [json.dumps({"instruction": f"Describe planet {i}."}) for i in range(12)]
    upload.write_text("\n".join([*good, '{"instruction": ""}', "not json at all"]) + "\n")
    _login(page, live_server.url, operator.username)
    worker = WorkerProcess(tmp_path).wait_ready()
    try:
        page.goto(f"{live_server.url}/datasets/import/")
        assert page.inner_text("label[for=id_skip_invalid]") == "Skip invalid records"
        page.set_input_files("#id_file", str(upload))
        page.fill("#id_dataset_name", "planets")
        page.click("button:has-text('Import')")
        page.wait_for_url("**/datasets/imports/*/")  # the job's own page, which can be bookmarked
        page.wait_for_selector("[data-testid=import-status][data-status=failed]", timeout=60_000)
    finally:
        worker.stop()
    status = page.locator("[data-testid=import-status]")
    text = status.inner_text()
    assert "Nothing was imported." in text and "--skip-invalid" not in text
    assert page.inner_text("[data-testid=import-counts]") == "14 records read · 0 imported · 0 duplicates skipped"
    assert "Skip invalid records ticked" in page.inner_text("[data-testid=import-hint]")
    rows = page.locator("[data-testid=import-status] table tbody tr").all_inner_texts()
    assert rows[0].startswith("line 13") and "empty" in rows[0] and rows[1].startswith("line 14")
    page.screenshot(path=SCREENSHOTS / "import-failed.png", full_page=True)

    page.reload()  # the URL alone brings the result back
    assert page.inner_text("[data-testid=import-counts]").endswith("0 imported · 0 duplicates skipped")
