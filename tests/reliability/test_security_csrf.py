"""CSRF on every state-changing route: a logged-in browser's POST without the token is refused with 403 and
changes nothing, on every page route (the console's table and the Django admin's, both from the resolver)
and on every API write sent with the session cookie. Token-authenticated API clients need no CSRF token
(tests/api/test_roles.py sends every write that way)."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import world  # noqa: F401 - the API tests' world, reused: one build per module
from tests.api.test_roles import CASES, _route
from tests.reliability.security_pages import PAGES, admin_path, admin_routes, rolled_back, state

pytestmark = pytest.mark.django_db


def _browser(client_class, user):
    client = client_class(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def _refused(response) -> str:
    """'' when the response is Django's CSRF refusal; otherwise what it was instead."""
    text = response.content.decode(errors="replace")
    if response.status_code == 403 and "CSRF" in text:
        return ""
    return f"{response.status_code}: {text[:200]}"


def test_every_page_post_without_the_token_is_refused(world):  # noqa: F811
    # The admin holds every role and staff status, so no role check stands between the POST and the view.
    browser = _browser(Client, world.users["admin"])
    paths = [page.path.format(**world.ids) for page in PAGES] + [admin_path(route) for route in admin_routes()]
    before, wrong = state(), []
    for path in paths:
        answer = _refused(rolled_back(lambda p=path: browser.post(p, {"name": "forged", "decision": "accept"})))
        if answer:
            wrong.append(f"POST {path} -> {answer}")
    assert not wrong, "\n".join(wrong)
    assert state() == before
    assert len(paths) > 250


def test_the_same_post_with_the_token_gets_past_the_check(world):  # noqa: F811
    """The control: the refusals above are CSRF's, not the view's (a logout needs nothing but the token)."""
    browser = _browser(Client, world.users["viewer"])
    token = browser.get("/datasets/").cookies["csrftoken"].value
    assert _refused(browser.post("/accounts/logout/")) == ""
    response = browser.post("/accounts/logout/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 302 and browser.get("/datasets/").status_code == 302  # logged out


WRITES = [case for case in CASES if case.method != "GET"]


def test_every_api_write_with_the_session_cookie_needs_the_token(world):  # noqa: F811
    api = _browser(APIClient, world.users["admin"])
    before, wrong = state(), []
    for case in WRITES:
        if _route(case) is None:
            continue  # not served yet (tests/api/test_roles.py skips it too)
        path = case.path.format(**world.ids)
        body = case.body(world) if callable(case.body) else case.body
        send = getattr(api, case.method.lower())
        response = rolled_back(lambda s=send, p=path, b=body, f=case.format: s(p, b, format=f))
        detail = response.json().get("detail", "") if response["Content-Type"].startswith("application/json") else ""
        if response.status_code != 403 or "CSRF" not in detail:
            wrong.append(f"{case.id} -> {response.status_code} {response.content[:200]!r}")
    assert not wrong, "\n".join(wrong)
    assert state() == before
    assert len(WRITES) >= 15
