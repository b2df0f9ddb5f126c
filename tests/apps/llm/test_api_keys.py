"""Only variables meant to hold LLM keys can be sent as a key, and only administrators aim a key.

The attack these tests close: an operator names SECRET_KEY (or DATABASE_URL) as an endpoint's key
variable, points the endpoint at a server of their own and presses "test connection"; the web process
sends the secret as a Bearer token.
"""

import pytest
from django.urls import reverse

from apps.core.errors import RetortError
from apps.core.roles import Role
from apps.llm.models import LLMEndpoint
from apps.llm.selectors import endpoint_config, endpoint_key_is_set
from apps.llm.services import llm_endpoint_create, llm_endpoint_test, llm_endpoint_update
from tests.apps.llm.conftest import make_endpoint
from tests.factories import user_with_role
from workers.llm import keys
from workers.llm.types import MissingApiKey

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "name",
    ["SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "RETORT_ADMIN_PASSWORD", "RETORT_X_API_KEY"],
)
def test_retorts_own_settings_are_never_keys(name, monkeypatch):
    monkeypatch.setenv(keys.ALLOW_LIST_VAR, name)  # not even when listed
    assert "Retort's own settings" in keys.refusal(name)
    with pytest.raises(keys.RefusedKeyVariable):
        keys.read_key(name)


def test_api_key_names_work_with_no_setup_and_others_need_the_allow_list(monkeypatch):
    assert keys.refusal("OPENAI_API_KEY") == "" and keys.refusal("DASHSCOPE_API_KEY") == ""
    assert "ending in _API_KEY" in keys.refusal("HF_TOKEN")
    monkeypatch.setenv(keys.ALLOW_LIST_VAR, "HF_TOKEN, TOGETHER_TOKEN")
    assert keys.refusal("HF_TOKEN") == "" and keys.refusal("TOGETHER_TOKEN") == ""
    assert keys.refusal("HOME") != ""


def test_saving_an_endpoint_that_names_a_secret_is_refused_with_the_reason(llm_server):
    with pytest.raises(Exception) as info:
        llm_endpoint_create(name="exfil", base_url=llm_server.url, model="m", api_key_env="SECRET_KEY")
    assert "SECRET_KEY is one of Retort's own settings" in str(info.value)
    assert not LLMEndpoint.objects.exists()


def test_a_row_written_around_the_service_still_never_sends_the_secret(llm_server, settings):
    # The admin, a fixture or an old database could hold such a row: the client refuses at read time.
    endpoint = make_endpoint(llm_server, api_key_env="SECRET_KEY")
    with pytest.raises(MissingApiKey, match="SECRET_KEY is one of Retort's own settings"):
        endpoint_config(endpoint).api_key()
    check = llm_endpoint_test(endpoint=endpoint)
    assert not check.ok and "own settings" in check.message
    # Nothing reached the server, so no Authorization header carried the secret anywhere.
    assert llm_server.server.stats.requests == 0
    assert settings.SECRET_KEY not in check.message


def test_key_is_set_is_no_oracle_for_other_variables(llm_server, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h/db")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert endpoint_key_is_set(make_endpoint(llm_server, api_key_env="DATABASE_URL")) is None
    monkeypatch.setenv("HF_TOKEN", "x")
    assert endpoint_key_is_set(make_endpoint(llm_server, api_key_env="HF_TOKEN")) is None
    monkeypatch.setenv("PROBE_API_KEY", "set")
    assert endpoint_key_is_set(make_endpoint(llm_server, api_key_env="PROBE_API_KEY")) is True


def test_only_an_administrator_chooses_the_key_variable_or_moves_a_keyed_endpoint(llm_server):
    operator, admin = user_with_role(Role.OPERATOR), user_with_role(None)
    admin.is_superuser = True
    admin.save()
    with pytest.raises(RetortError, match="Only an administrator may choose") as info:
        llm_endpoint_create(by=operator, name="k", base_url=llm_server.url, model="m", api_key_env="OPENAI_API_KEY")
    assert info.value.details["field"] == "api_key_env"
    keyless = llm_endpoint_create(by=operator, name="local", base_url=llm_server.url, model="m")
    llm_endpoint_update(endpoint=keyless, by=operator, base_url="http://127.0.0.1:9/v1")  # no key to leak

    keyed = llm_endpoint_create(by=admin, name="openai", base_url=llm_server.url, model="m", api_key_env="X_API_KEY")
    with pytest.raises(RetortError, match="change the base URL") as info:
        llm_endpoint_update(endpoint=keyed, by=operator, base_url="https://evil.example/v1")
    with pytest.raises(RetortError, match="choose the API key variable"):
        llm_endpoint_update(endpoint=keyed, by=operator, api_key_env="OTHER_API_KEY")
    keyed.refresh_from_db()
    assert keyed.base_url == llm_server.url and keyed.api_key_env == "X_API_KEY"
    llm_endpoint_update(endpoint=keyed, by=operator, max_concurrency=3)  # tuning stays an operator's job
    llm_endpoint_update(endpoint=keyed, by=admin, base_url="http://127.0.0.1:9/v1")
    keyed.refresh_from_db()
    assert keyed.max_concurrency == 3 and keyed.base_url == "http://127.0.0.1:9/v1"


def test_the_page_and_api_say_why_and_change_nothing(llm_server, client_for, api_for):
    keyed = make_endpoint(llm_server, name="keyed", api_key_env="OPENAI_API_KEY")
    operator = client_for(Role.OPERATOR)
    form = {
        "name": "keyed",
        "backend": "openai",
        "base_url": "https://evil.example/v1",
        "model": "m",
        "api_key_env": "SECRET_KEY",
        "max_concurrency": 4,
        "timeout_s": 5,
        "price_input_per_mtok": "0",
        "price_output_per_mtok": "0",
        "default_params": "{}",
    }
    response = operator.post(reverse("llm:endpoint-edit", args=[keyed.pk]), form)
    # The form shows both fields locked for an operator: the posted values are ignored, so nothing moves.
    keyed.refresh_from_db()
    assert keyed.base_url == llm_server.url and keyed.api_key_env == "OPENAI_API_KEY"
    assert response.status_code == 302
    page = operator.get(reverse("llm:endpoint-edit", args=[keyed.pk])).content.decode()
    assert "Only an administrator may move an endpoint" in page

    api = api_for(Role.OPERATOR)
    url = reverse("api-llm-endpoint-detail", args=[keyed.pk])
    response = api.patch(url, {"base_url": "https://evil.example/v1"}, format="json")
    assert response.status_code == 400 and "base URL" in response.json()["detail"]
    response = api.post(
        reverse("api-llm-endpoint-list"),
        {"name": "x", "base_url": llm_server.url, "model": "m", "api_key_env": "SECRET_KEY"},
        format="json",
    )
    assert response.status_code == 400 and "own settings" in str(response.json())
    keyed.refresh_from_db()
    assert keyed.base_url == llm_server.url and LLMEndpoint.objects.count() == 1


def test_offline_endpoints_need_no_model_and_concurrency_starts_at_one(client_for):
    from tests.factories import DatasetFactory

    operator = client_for(Role.OPERATOR)
    page = operator.get(reverse("llm:endpoint-create")).content.decode()
    assert 'name="max_concurrency"' in page and 'min="1"' in page
    dataset = DatasetFactory()
    form = {
        "name": "replayer",
        "backend": "offline_replay",
        "offline_dataset": dataset.pk,
        "max_concurrency": 4,
        "timeout_s": 5,
        "price_input_per_mtok": "0",
        "price_output_per_mtok": "0",
        "default_params": "{}",
    }
    assert operator.post(reverse("llm:endpoint-create"), form).status_code == 302
    assert LLMEndpoint.objects.get(name="replayer").model == "offline_replay"
    response = operator.post(reverse("llm:endpoint-create"), {**form, "name": "api", "backend": "openai"})
    assert "needs the model name" in response.content.decode()
