"""An LLM API key, given by its environment variable's name (LLMEndpoint.api_key_env), never lands in a
database dump, a page, an API body, a log line, an export, or an error report (the 500 page with DEBUG
off, Django's error e-mail as AdminEmailHandler formats it, the DEBUG page, a DRF error body).

The run behind it: the local test server wants another key and answers every call with a 401 that repeats
the key it was sent (as some providers do), so the key reaches our side in a reply body, and a web request
crashes while the key sits in a local variable. The key has no `sk-` shape, so only knowing the value, not
guessing its look, keeps it out."""

import io
import logging
from pathlib import Path

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import path
from django.utils.log import AdminEmailHandler
from rest_framework.decorators import api_view
from rest_framework.test import APIClient

from apps.core.roles import Role
from apps.experiments.exports.services import export_run, export_start
from apps.llm.selectors import endpoint_config
from apps.llm.services import llm_calls_enqueue
from config.urls import urlpatterns as site_patterns
from tests.apps.experiments.conftest import seed_dataset
from tests.apps.llm.conftest import drain, make_endpoint, make_experiment, teacher_requests
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
KEY_VAR = "RELIABILITY_PROBE_API_KEY"
SECRET = "rtk9Q2vX7mB4nL8pZ3wC6yT1hJ5"
FRAGMENTS = (SECRET, SECRET[:8], SECRET[-6:])


def _crash(request):
    """A view that fails while the key sits in a local, as a connection test's code would hold it."""
    from apps.llm.models import LLMEndpoint

    api_key = endpoint_config(LLMEndpoint.objects.get(api_key_env=KEY_VAR)).api_key()
    raise RuntimeError(f"the upstream refused us ({len(api_key)} characters sent)")


@api_view(["GET"])
def _api_crash(request):
    return _crash(request)


urlpatterns = [path("crash/", _crash), path("api/v1/crash/", _api_crash), *site_patterns]


def api_for_viewer():
    api = APIClient(raise_request_exception=False)
    api.force_authenticate(UserFactory(role=Role.VIEWER))
    return api


def _leaks(text: str) -> list[str]:
    return [fragment for fragment in FRAGMENTS if fragment in text]


@pytest.fixture
def keyed(monkeypatch, llm_server):
    monkeypatch.setenv(KEY_VAR, SECRET)
    llm_server.configure(api_key="the-key-the-server-wants-0000")
    return make_endpoint(llm_server, name="keyed-teacher", api_key_env=KEY_VAR, max_concurrency=2)


@pytest.fixture
def llm_server():
    from tests.llm_server.server import ServerThread

    with ServerThread() as server:
        yield server


def test_the_key_is_in_no_dump_page_api_body_log_or_export(keyed, llm_server, caplog, client_for, api_for):
    caplog.set_level(logging.DEBUG)
    seeds = seed_dataset(3)
    experiment = make_experiment(name="keyed-run", dataset=seeds)
    llm_calls_enqueue(
        endpoint=keyed,
        requests=teacher_requests(keyed, 3),
        purpose="teacher",
        experiment_id=experiment.pk,
        stage="answer",
        kick=False,
    )
    drain(keyed)
    assert llm_server.stats().by_status.get("401"), "the key never reached the server: nothing was tested"
    operator = client_for(Role.OPERATOR)
    operator.post(f"/llm/endpoints/{keyed.pk}/test/", HTTP_HX_REQUEST="true")  # the web process sends it too

    seen = {"dumpdata": io.StringIO(), "logs": caplog}
    call_command("dumpdata", stdout=seen["dumpdata"])
    texts = {"dumpdata": seen["dumpdata"].getvalue()}
    for url in ("/llm/endpoints/", f"/llm/endpoints/{keyed.pk}/", f"/llm/endpoints/{keyed.pk}/edit/", "/llm/costs/"):
        texts[url] = operator.get(url).content.decode()
    texts[f"/experiments/{experiment.pk}/"] = operator.get(f"/experiments/{experiment.pk}/").content.decode()
    api = api_for(Role.VIEWER)
    for url in ("/api/v1/llm/endpoints/", "/api/v1/llm/calls/", f"/api/v1/experiments/{experiment.pk}/costs/"):
        texts[url] = api.get(url).content.decode()
    texts["api test"] = api_for(Role.OPERATOR).post(f"/api/v1/llm/endpoints/{keyed.pk}/test/").content.decode()
    export = export_run(job_id=export_start(by=UserFactory(role=Role.VIEWER), fmt="openai", dataset=seeds.name).pk)
    for item in Path(export.output_dir).rglob("*"):
        if item.is_file():
            texts[f"export {item.name}"] = item.read_text(errors="replace")
    assert any(name.startswith("export ") for name in texts)
    texts["logs"] = caplog.text
    assert "401" in texts["logs"] and "keyed-teacher" in texts["dumpdata"]
    assert {where: _leaks(text) for where, text in texts.items() if _leaks(text)} == {}


@override_settings(ROOT_URLCONF=__name__, DEBUG=False, ADMINS=[("ops", "ops@example.org")])
def test_the_key_is_in_no_error_report(keyed):
    handler = AdminEmailHandler(include_html=True)
    logging.getLogger("django.request").addHandler(handler)
    try:
        browser = Client(raise_request_exception=False)
        browser.force_login(UserFactory(role=Role.VIEWER))
        # As under runserver, where the request's META is a copy of the process environment.
        page = browser.get("/crash/", **{KEY_VAR: SECRET})
    finally:
        logging.getLogger("django.request").removeHandler(handler)
    assert page.status_code == 500 and _leaks(page.content.decode()) == []
    assert len(mail.outbox) == 1, "AdminEmailHandler sent no report"
    report = mail.outbox[0]
    html = report.alternatives[0][0]
    assert "api_key" in html and KEY_VAR in html  # the local and the variable are listed, their values not
    assert _leaks(report.subject + report.body) == [] and _leaks(html) == []
    with override_settings(DEBUG=True):
        debug_page = browser.get("/crash/", **{KEY_VAR: SECRET}).content.decode()
    assert "the upstream refused us" in debug_page and _leaks(debug_page) == []


def test_a_crashing_api_view_answers_without_the_key(keyed, settings):
    settings.ROOT_URLCONF = __name__
    api = api_for_viewer()
    response = api.get("/api/v1/crash/", **{KEY_VAR: SECRET})
    assert response.status_code == 500 and _leaks(response.content.decode()) == []
