"""Stored XSS, in Chromium: payloads (a script tag, an image with onerror, an attribute break-out into an svg
with onload, a javascript: link in markdown and in raw HTML, HTML entities, Django template syntax) stored
in every field that shows LLM or user text, then every page that shows them loaded once. No payload may
run (each would push to window.__xss or open a dialog), no javascript: link may be left clickable, and
the text must be on the page (shown as text or sanitised markdown, never executed)."""

import itertools

import pytest
from django.test import Client

from apps.core.roles import Role
from apps.datasets.models import ImportJob
from apps.experiments.exports.models import ExportJob
from apps.llm.models import LLMCall, LLMCallUse, LLMEndpoint
from tests.apps.console.review_builders import KINDS, build, make_round
from tests.e2e.conftest import browser  # noqa: F401 - Debian's Chromium through Playwright
from tests.factories import InstructionFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
MARK = "XSS-PROBE"
# For short fields (names, at most 100 characters): an attribute break-out and two handlers.
SHORT = f"\"'><svg onload=__xss.push(1)><img src=x onerror=__xss.push(2)>{MARK}{{{{7|add:7}}}}"
LONG = (
    f"{MARK} <script>__xss.push('script')</script> "
    "<img src=x onerror=\"__xss.push('img');alert('img')\"> "
    '"><svg onload="__xss.push(\'svg\')"> '
    "[click](javascript:__xss.push('md-link')) <a href=\"javascript:__xss.push('a')\">raw</a> "
    "<iframe srcdoc=\"<script>parent.__xss.push('iframe')</script>\"></iframe> "
    "&lt;b&gt;entity&amp;&#x3C;script&#x3E; {{ 7|add:7 }} {% now 'Y' %} ${7*7}\n\n"
    "So the answer is B.\nScore of Assistant 1: 8\nScore of Assistant 2: 3"
)


def _world():
    """Every field that shows LLM or user text, holding a payload; the pages that show them."""
    numbers = itertools.count()

    def text() -> str:  # a payload of its own per field: instructions are unique by their text
        return f"{LONG} ({next(numbers)})"

    round_ = make_round()
    experiment = round_.experiment
    experiment.__class__.objects.filter(pk=experiment.pk).update(name=SHORT, status_reason=text())
    experiment.dataset.__class__.objects.filter(pk=experiment.dataset_id).update(
        name=SHORT, description=text(), source=SHORT, license=SHORT
    )
    instruction = InstructionFactory(
        dataset=experiment.dataset, text=text(), input=text(), reference_output=text(), gold_label=SHORT
    )
    tasks = {}
    for kind in KINDS:
        fields = {
            "verdict": {"teacher": text(), "student": text(), "text": text()},
            "rewrite": {"rewrite": text(), "original": text()},
            "generated": {"text": text()},
            "answer": {"text": text()},
            "invalid_reply": {"reply": text()},
        }.get(kind, {})
        tasks[kind] = build(kind, round_, **fields)
    call = LLMCallUse.objects.get(pk=tasks["invalid_reply"].subject_id).call_id
    LLMCall.objects.filter(pk=call).update(error=text())
    endpoint = LLMEndpoint.objects.create(name=SHORT, base_url="http://127.0.0.1:9/v1", model=SHORT, last_error=text())
    imported = ImportJob.objects.create(
        dataset_name=SHORT,
        source_path="/x",
        original_filename=SHORT,
        message=text(),
        errors=[{"location": SHORT, "reason": text()}],
        error_count=1,
        status="failed",
    )
    exported = ExportJob.objects.create(format="openai", source_label=SHORT, error=text(), status="failed")
    ds, exp = experiment.dataset_id, experiment.pk
    pages = [
        "/",
        "/datasets/",
        f"/datasets/{ds}/",
        f"/datasets/{ds}/instructions/{instruction.pk}/",
        f"/datasets/imports/{imported.pk}/",
        "/experiments/",
        f"/experiments/{exp}/",
        f"/experiments/{exp}/costs/",
        "/experiments/exports/",
        f"/experiments/exports/{exported.pk}/",
        "/llm/endpoints/",
        f"/llm/endpoints/{endpoint.pk}/",
        "/review/",
        "/review/verdict/table/",
        *(f"/review/{kind}/{task.pk}/" for kind, task in tasks.items()),
    ]
    return pages


def _signed_in(browser_, base: str, user):
    client = Client()
    client.force_login(user)
    context = browser_.new_context()
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": base}])
    context.add_init_script("window.__xss = [];")
    return context


def test_no_stored_payload_runs_on_any_page(live_server, browser):  # noqa: F811
    pages = _world()
    # The user's own name is shown in every page's header.
    user = UserFactory(username=SHORT.replace(" ", "")[:150], role=Role.OPERATOR)
    context = _signed_in(browser, live_server.url, user)
    page = context.new_page()
    page.set_default_timeout(20_000)
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    wrong = []
    for url in pages:
        response = page.goto(live_server.url + url, wait_until="load")
        ran = page.evaluate("window.__xss")
        live_links = page.eval_on_selector_all(
            "a[href]", "els => els.map(e => e.href).filter(h => /^\\s*javascript:/i.test(h))"
        )
        text = page.inner_text("body")
        if response.status != 200:
            wrong.append(f"{url}: HTTP {response.status}")
        if ran or dialogs:
            wrong.append(f"{url}: payloads ran: {ran} {dialogs}")
        if live_links:
            wrong.append(f"{url}: javascript: links left clickable: {live_links}")
        if MARK not in text or "{{" not in text:
            wrong.append(f"{url}: the stored text is not on the page as text")
        dialogs.clear()
    context.close()
    assert not wrong, "\n".join(wrong)
    assert len(pages) >= 20
