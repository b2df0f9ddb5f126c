"""Pages and API: who may see and change endpoints, test connection, templates, costs."""

import pytest
from django.urls import reverse

from apps.core.roles import Role
from apps.llm.models import LLMCall, LLMEndpoint
from apps.llm.services import llm_calls_enqueue
from tests.apps.llm.conftest import drain, make_endpoint, make_experiment, teacher_requests

pytestmark = pytest.mark.django_db
SECRET = "sk-page-test-4b9d8e7f6a5c3b2a1d0e"


def _form(server_url, **extra):
    data = {
        "name": "teacher-local",
        "backend": "openai",
        "base_url": server_url,
        "model": "teacher-a",
        "api_key_env": "PAGE_TEST_API_KEY",
        "max_concurrency": 4,
        "timeout_s": 5,
        "price_input_per_mtok": "1.5",
        "price_output_per_mtok": "6",
        "default_params": '{"temperature": 0.3}',
    }
    return {**data, **extra}


def test_viewers_see_endpoints_operators_change_them(llm_server, client_for):
    endpoint = make_endpoint(llm_server, name="visible-one")
    viewer = client_for(Role.VIEWER)
    assert "visible-one" in viewer.get(reverse("llm:endpoints")).content.decode()
    assert viewer.get(reverse("llm:endpoint", args=[endpoint.pk])).status_code == 200
    assert viewer.post(reverse("llm:endpoint-create"), _form(llm_server.url)).status_code == 403
    assert viewer.post(reverse("llm:endpoint-test", args=[endpoint.pk])).status_code == 403

    operator = client_for(Role.OPERATOR)
    response = operator.post(reverse("llm:endpoint-create"), _form(llm_server.url))
    created = LLMEndpoint.objects.get(name="teacher-local")
    assert response.status_code == 302 and created.default_params == {"temperature": 0.3}
    response = operator.post(reverse("llm:endpoint-edit", args=[created.pk]), _form(llm_server.url, max_concurrency=9))
    created.refresh_from_db()
    assert response.status_code == 302 and created.max_concurrency == 9


def _as_admin(client):
    client.user.is_superuser = True  # only administrators choose key variables
    client.user.save()
    return client


def test_the_form_rejects_a_key_pasted_where_the_variable_name_goes(llm_server, client_for):
    admin = _as_admin(client_for(Role.OPERATOR))
    response = admin.post(reverse("llm:endpoint-create"), _form(llm_server.url, api_key_env=SECRET))
    assert response.status_code == 200 and not LLMEndpoint.objects.exists()
    assert "environment variable name" in response.content.decode()


def test_offline_endpoints_are_labelled_and_need_a_dataset(client_for):
    operator = client_for(Role.OPERATOR)
    response = operator.post(reverse("llm:endpoint-create"), _form("", backend="offline_replay", api_key_env=""))
    assert response.status_code == 200 and "needs the dataset" in response.content.decode()
    from tests.factories import DatasetFactory

    make_endpoint(name="replayer", backend="offline_replay", model="recorded", offline_dataset=DatasetFactory())
    assert 'badge offline">offline' in operator.get(reverse("llm:endpoints")).content.decode()


def test_test_connection_answers_in_a_partial_and_never_shows_the_key(llm_server, client_for, monkeypatch):
    monkeypatch.setenv("PAGE_TEST_API_KEY", SECRET)
    endpoint = make_endpoint(llm_server, api_key_env="PAGE_TEST_API_KEY", price_input_per_mtok=1)
    operator = client_for(Role.OPERATOR)
    url = reverse("llm:endpoint-test", args=[endpoint.pk])

    llm_server.configure(api_key=SECRET)
    ok = operator.post(url, HTTP_HX_REQUEST="true")
    assert ok.status_code == 200 and "Connected: teacher-a answered" in ok.content.decode()
    assert "<html" not in ok.content.decode()  # only the partial

    llm_server.configure(api_key="another-key-entirely")
    bad = operator.post(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Failed: HTTP 401" in bad and SECRET not in bad and SECRET[:8] not in bad
    page = operator.get(reverse("llm:endpoint", args=[endpoint.pk])).content.decode()
    assert "PAGE_TEST_API_KEY" in page and SECRET not in page and "Last error" in page
    no_js = operator.post(url)
    assert no_js.status_code == 302
    assert LLMCall.objects.filter(purpose="connection_test").count() == 3  # tests are paid calls, in the ledger


def test_prompt_templates_are_listed_and_shown_read_only(client_for):
    viewer = client_for(Role.VIEWER)
    listing = viewer.get(reverse("llm:prompts")).content.decode()
    assert "Pairwise referee" in listing and "judge_pairwise" in listing
    detail = viewer.get(reverse("llm:prompt", args=["judge_pairwise", 1])).content.decode()
    assert "Score of Assistant 1: &lt;score&gt;" in detail and "<form" not in detail.split("<main>")[1]
    assert viewer.get(reverse("llm:prompt", args=["judge_pairwise", 42])).status_code == 404


def test_cost_pages_show_stages_budget_and_estimates(llm_server, client_for):
    endpoint = make_endpoint(llm_server, price_input_per_mtok=100, price_output_per_mtok=300)
    experiment = make_experiment(name="costly", budget_usd=50)
    llm_calls_enqueue(
        endpoint=endpoint,
        requests=teacher_requests(endpoint, 4),
        purpose="teacher",
        experiment_id=experiment.pk,
        stage="answer",
        kick=False,
    )
    drain(endpoint)
    llm_calls_enqueue(
        endpoint=endpoint,
        requests=teacher_requests(endpoint, 3, prefix="later"),
        purpose="teacher",
        experiment_id=experiment.pk,
        stage="rewrite",
        kick=False,
    )
    viewer = client_for(Role.VIEWER)
    assert "costly" in viewer.get(reverse("llm:costs")).content.decode()
    page = viewer.get(reverse("experiments:costs", args=[experiment.pk])).content.decode()
    assert 'data-testid="by-stage"' in page and ">answer<" in page and ">rewrite<" in page
    assert 'data-testid="estimates"' in page and "of $50" in page


def test_the_api_lists_and_changes_endpoints_by_role(llm_server, api_for, monkeypatch):
    viewer, operator, admin = api_for(Role.VIEWER), api_for(Role.OPERATOR), _as_admin(api_for(Role.OPERATOR))
    body = {
        "name": "api-made",
        "backend": "openai",
        "base_url": llm_server.url,
        "model": "teacher-a",
        "api_key_env": "API_TEST_API_KEY",
        "max_concurrency": 3,
    }
    assert viewer.post("/api/v1/llm/endpoints/", body, format="json").status_code == 403
    assert operator.post("/api/v1/llm/endpoints/", body, format="json").status_code == 400  # names a key
    created = admin.post("/api/v1/llm/endpoints/", body, format="json")
    assert created.status_code == 201 and created.json()["api_key_env"] == "API_TEST_API_KEY"
    assert "api_key" not in created.json()
    pk = created.json()["id"]
    assert (
        operator.patch(f"/api/v1/llm/endpoints/{pk}/", {"max_concurrency": 7}, format="json").json()["max_concurrency"]
        == 7
    )
    assert [e["name"] for e in viewer.get("/api/v1/llm/endpoints/").json()["results"]] == ["api-made"]
    missing = operator.post(f"/api/v1/llm/endpoints/{pk}/test/").json()
    assert missing["ok"] is False and "API_TEST_API_KEY is not set" in missing["message"]
    monkeypatch.setenv("API_TEST_API_KEY", "anything-will-do")
    assert operator.post(f"/api/v1/llm/endpoints/{pk}/test/").json()["ok"] is True


def test_the_api_exposes_the_ledger_costs_and_templates(llm_server, api_for):
    endpoint = make_endpoint(llm_server, price_input_per_mtok=2)
    experiment = make_experiment()
    llm_calls_enqueue(
        endpoint=endpoint,
        requests=teacher_requests(endpoint, 3),
        purpose="teacher",
        experiment_id=experiment.pk,
        stage="answer",
        kick=False,
    )
    drain(endpoint)
    api = api_for(Role.VIEWER)
    calls = api.get(f"/api/v1/llm/calls/?experiment={experiment.pk}&status=ok").json()
    assert len(calls["results"]) == 3 and calls["results"][0]["uses"][0]["stage"] == "answer"
    assert calls["results"][0]["uses"][0]["experiment"] == experiment.pk
    costs = api.get(f"/api/v1/experiments/{experiment.pk}/costs/").json()
    assert costs["total"]["calls"] == 3 and costs["by_stage"][0]["stage"] == "answer"
    assert float(costs["total"]["cost"]) > 0 and costs["budget"]["usd"] is None
    templates = api.get("/api/v1/llm/prompts/").json()
    assert {"id": "judge_pairwise", "version": 1} in [{"id": t["id"], "version": t["version"]} for t in templates]
    assert "Score of Assistant 1" in api.get("/api/v1/llm/prompts/judge_pairwise/v1/").json()["user"]
    assert api.get("/api/v1/llm/prompts/judge_pairwise/v9/").status_code == 404
