"""Token and session authentication, with the pages' role checks: `manage.py drf_create_token` makes a
token that the API takes as `Authorization: Token …`; a logged-in browser session works too, and its
writes need the CSRF token like a form's."""

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.core.roles import Role
from tests.factories import DatasetFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_drf_create_token_makes_a_token_the_api_accepts(capsys):
    user = UserFactory(role=Role.VIEWER)
    DatasetFactory(name="seen-by-token")
    call_command("drf_create_token", user.username)
    key = Token.objects.get(user=user).key
    assert key in capsys.readouterr().out
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    body = api.get("/api/v1/datasets/").json()
    assert [d["name"] for d in body["results"]] == ["seen-by-token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {key[:-1]}x")
    refused = api.get("/api/v1/datasets/")
    assert refused.status_code == 401 and refused.json() == {"detail": "Invalid token."}


def test_a_token_holder_has_exactly_the_users_role():
    user = UserFactory(role=Role.REVIEWER)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    refused = api.post("/api/v1/exports/", {"format": "openai"}, format="json")
    assert refused.status_code == 400  # reviewers may export: past the role check, the body is checked
    refused = api.post("/api/v1/experiments/estimate/", {"config": {}}, format="json")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This needs the operator role."}


def test_a_browser_session_reads_and_its_writes_need_the_csrf_token():
    user = UserFactory(role=Role.VIEWER)
    dataset = DatasetFactory(name="session-set")
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.get(f"/api/v1/datasets/{dataset.pk}/").json()["name"] == "session-set"
    body = {"format": "openai", "dataset": "session-set"}
    refused = browser.post("/api/v1/exports/", body, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    page = browser.get("/datasets/")  # any page sets the CSRF cookie
    token = page.cookies["csrftoken"].value
    accepted = browser.post("/api/v1/exports/", body, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 202, accepted.json()


def test_a_user_without_a_role_is_refused_by_token_and_by_session():
    user = UserFactory()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert api.get("/api/v1/experiments/").status_code == 403
    session = APIClient()
    session.force_login(user)
    assert session.get("/api/v1/experiments/").status_code == 403
