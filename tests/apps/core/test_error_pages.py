"""What a refused or lost user sees: styled error pages with the menu and a reason, one log line per 403,
and a footer that tells the run mode to everyone but the topology only to staff."""

import io
import logging

import pytest
from django.test import RequestFactory

from apps.core.roles import Role
from config.modes import RunMode
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_user_without_a_role_gets_a_styled_403_with_the_reason_and_a_way_out(client_for):
    response = client_for(None).get("/datasets/")
    body = response.content.decode()
    assert response.status_code == 403
    assert "retort.css" in body and 'href="/datasets/"' in body  # the page's own styles and menu
    assert "This needs the viewer role; your account has no role yet." in body
    assert 'action="/accounts/logout/"' in body and "Log out and sign in as someone else" in body


def test_a_viewer_on_an_operator_page_is_told_which_role_it_needs_and_which_they_hold(client_for):
    response = client_for(Role.VIEWER).get("/datasets/import/")
    body = response.content.decode()
    assert response.status_code == 403
    assert "This needs the operator role; your account has the viewer role." in body
    assert "with the <b>viewer</b> role" in body


def test_api_refusals_stay_json_and_name_the_roles(api_for):
    response = api_for(Role.VIEWER).post("/api/v1/imports/new/", {}, format="multipart")
    assert response.status_code == 403 and response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "This needs the operator role."}


def test_a_service_refusal_through_the_api_names_both_roles(api_for, tmp_path):
    from apps.core.roles import RoleRequired, require_role

    user = api_for(Role.REVIEWER).user
    with pytest.raises(RoleRequired) as refused:
        require_role(user, Role.OPERATOR)
    assert (refused.value.needed, refused.value.held) == (Role.OPERATOR, Role.REVIEWER)
    assert str(refused.value) == "This needs the operator role; your account has the reviewer role."


@pytest.fixture
def log_lines(settings):
    """Everything the configured handlers write, as text, with DEBUG on (as in `make run`, where Django's
    own console handler would also be active)."""
    settings.DEBUG = True
    stream = io.StringIO()
    swapped = []
    for logger in (logging.getLogger(), logging.getLogger("django"), logging.getLogger("django.request")):
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and type(handler).__module__ == "logging":
                swapped.append((handler, handler.setStream(stream)))
    yield stream
    for handler, old in swapped:
        handler.setStream(old)


def test_a_403_is_logged_once_in_one_line_without_a_traceback(client_for, log_lines):
    assert client_for(None).get("/datasets/").status_code == 403
    text = log_lines.getvalue()
    assert text.count("Forbidden (Permission denied): /datasets/") == 1, text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1, text


def test_other_errors_keep_their_traceback_in_the_log():
    from apps.core.log_filters import RefusalWithoutTraceback

    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "x", None, sys.exc_info())
    record.status_code = 500
    assert RefusalWithoutTraceback().filter(record) and record.exc_info is not None


def test_404_400_and_500_pages_are_styled(client_for):
    from django.views import defaults

    response = client_for(Role.VIEWER).get("/datasets/987654/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode() and "retort.css" in response.content.decode()
    request = RequestFactory().get("/broken/")
    for view, status, words in [
        (defaults.server_error, 500, "Something went wrong on the server"),
        (lambda r: defaults.bad_request(r, Exception()), 400, "could not understand that request"),
    ]:
        response = view(request)
        body = response.content.decode()
        assert response.status_code == status and words in body and "retort.css" in body


def test_the_login_page_shows_the_mode_but_no_paths(client, settings):
    # The suite runs in either mode (CI: production); the page must hide the embedded mode's paths.
    settings.RUN_MODE = RunMode("embedded", f"SQLite file {settings.VAR_DIR}/retort.sqlite3", "filesystem broker")
    body = client.get("/accounts/login/").content.decode()
    assert 'data-testid="run-mode">embedded mode<' in body
    assert str(settings.VAR_DIR) not in body and "SQLite file" not in body and "broker" not in body


def test_production_topology_is_for_staff_only(client, settings):
    settings.RUN_MODE = RunMode("production", "postgres://retort:***@db.internal:5432/retort", "redis://mq:6379/0")
    viewer = UserFactory(role=Role.VIEWER)
    client.force_login(viewer)
    body = client.get("/datasets/").content.decode()
    assert "production mode" in body and "db.internal" not in body and "retort:" not in body
    staff = UserFactory(role=Role.VIEWER, is_staff=True)
    client.force_login(staff)
    body = client.get("/datasets/").content.decode()
    assert "postgres://retort:***@db.internal:5432/retort" in body and "redis://mq:6379/0" in body
