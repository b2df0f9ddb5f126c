"""Every page needs a login and every page and API checks the role."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from apps.core.roles import Role
from tests.factories import DatasetFactory, InstructionFactory

pytestmark = pytest.mark.django_db

# Pages that must be reachable without logging in.
PUBLIC_PREFIXES = ("/accounts/login/", "/accounts/password_reset/", "/accounts/reset/", "/static/")


def _all_routes(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _all_routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _concrete(route: str, ids: dict) -> str:
    """Fill <int:...> and regex groups with ids that exist, so the view itself answers."""
    import re

    path = re.sub(r"<int:instruction_pk>", str(ids["instruction"]), route)
    path = re.sub(r"<int:\w+>", str(ids["dataset"]), path)
    path = re.sub(r"<(path|str|slug):\w+>", "x", path)
    path = path.replace("^", "").replace("$", "").replace("\\Z", "")
    return "/" + path


def _page_routes():
    for route in _all_routes():
        if "(?P" in route or "<drf_format_suffix" in route or route.startswith("api/"):
            continue
        if route.startswith("admin/") and route != "admin/":
            continue
        if ("/" + route).startswith(PUBLIC_PREFIXES) or route.startswith("accounts/"):
            continue  # Django's authentication views: public by design
        yield route


@pytest.mark.parametrize("route", sorted(set(_page_routes())))
def test_every_page_redirects_anonymous_users_to_login(client, route):
    instruction = InstructionFactory()
    path = _concrete(route, {"dataset": instruction.dataset_id, "instruction": instruction.pk})
    response = client.get(path)
    assert response.status_code == 302, path
    assert "/login/" in response["Location"]


@pytest.mark.parametrize("route", ["/", "/datasets/", "/datasets/{d}/", "/datasets/imports/{j}/"])
def test_logged_in_user_without_a_role_is_refused(client_for, route):
    from apps.datasets.models import ImportJob

    dataset = DatasetFactory()
    job = ImportJob.objects.create(dataset_name="x", source_path="/nonexistent")
    response = client_for(None).get(route.format(d=dataset.pk, j=job.pk))
    assert response.status_code == 403


def test_import_page_needs_the_operator_role(client_for):
    assert client_for(Role.REVIEWER).get("/datasets/import/").status_code == 403
    assert client_for(Role.OPERATOR).get("/datasets/import/").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/datasets/", "/api/v1/imports/", "/api/schema/"])
def test_api_refuses_anonymous_requests(client, path):
    assert client.get(path).status_code in (401, 403)


def test_api_refuses_users_without_a_role(api_for):
    assert api_for(None).get("/api/v1/datasets/").status_code == 403


def test_api_import_needs_the_operator_role(api_for, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("a.jsonl", b'{"instruction": "Say hi."}\n')
    response = api_for(Role.REVIEWER).post("/api/v1/imports/new/", {"file": upload, "dataset": "d"})
    assert response.status_code == 403


def test_api_viewer_can_read_datasets_and_schema(api_for):
    DatasetFactory(name="visible")
    api = api_for(Role.VIEWER)
    body = api.get("/api/v1/datasets/").json()
    assert [d["name"] for d in body["results"]] == ["visible"]
    assert api.get("/api/schema/").status_code == 200


def test_admin_lists_every_model(client):
    from django.apps import apps
    from django.contrib import admin

    from tests.factories import UserFactory

    ours = [m for m in apps.get_models() if m.__module__.startswith("apps.")]
    assert ours, "no project models found"
    missing = [m.__name__ for m in ours if not admin.site.is_registered(m)]
    assert missing == []
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    for model in ours:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert client.get(url).status_code == 200, url


def test_api_root_lists_the_resources_for_viewers_only(client, api_for):
    assert client.get("/api/v1/").status_code in (401, 403)
    assert api_for(None).get("/api/v1/").status_code == 403
    body = api_for(Role.VIEWER).get("/api/v1/").json()
    assert body["resources"]["datasets"] == "http://testserver/api/v1/datasets/"
    assert body["resources"]["imports"] == "http://testserver/api/v1/imports/"
    assert "llm/endpoints" in body["resources"] and "<" not in "".join(body["resources"].values())
    assert body["schema"].endswith("/api/schema/") and body["docs"].endswith("/api/docs/")


def test_api_docs_are_served_from_our_own_static_files(client_for):
    body = client_for(Role.VIEWER).get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in body
    assert "cdn" not in body.lower() and "https://" not in body
