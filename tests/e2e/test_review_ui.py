"""Reviewers in Chromium: ten items of every queue kind reviewed by keyboard alone until each gate's count
reaches zero; a viewer sees no decision buttons and a forged POST answers 403; an answer holding script,
an image with onerror, an iframe with srcdoc and a javascript: link renders inert; leaving the page gives
the held task back. A screenshot of every
page is saved beside the other browser tests' ones."""

import pytest

from apps.core.roles import Role
from apps.experiments.selectors import gate_open_count
from apps.reviews.models import ReviewAssignment, ReviewTask, ReviewVerdict
from tests.apps.console.review_builders import KINDS, build, make_round, verdict_task
from tests.conftest import REPO_ROOT
from tests.factories import TEST_PASSWORD, UserFactory
from workers.algorithms.task_vocabulary import TASK_CATEGORIES

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SCREENSHOTS = REPO_ROOT / "var" / "test" / "screenshots"
PER_KIND = 10

# The keys pressed for each of the ten items of a kind: a decision's key, then Enter (an edit: the key,
# some typing, then Ctrl+Enter from the box).
PLANS = {
    "verdict": ["1", "f", "3", "a", "2", "1", "1", "f", "a", "3"],
    "rewrite": ["a", "r", "e", "1", "2", "3", "a", "r", "e", "a"],
    "generated": ["1", "2", "e", "a", "r", "a", "3", "1", "r", "a"],
    "rationale": ["a", "e", "r", "1", "1", "2", "3", "a", "a", "r"],
    "task_label": ["1", "e", "a", "2", "1", "e", "1", "a", "2", "1"],
    "invalid_reply": ["1", "2", "r", "1", "2", "2", "1", "r", "2", "1"],
    "answer": ["a", "r", "e", "a", "1", "2", "3", "a", "r", "1"],
}
DECISIONS = {  # what each key chooses, per kind (the buttons' data-keys)
    "verdict": {"1": "accept", "a": "accept", "2": "flip", "f": "flip", "3": "invalid"},
    "task_label": {"1": "accept", "a": "accept", "2": "edit", "e": "edit"},
    "invalid_reply": {"1": "retry", "2": "reject", "r": "reject"},
}
GENERIC = {"1": "accept", "a": "accept", "2": "reject", "r": "reject", "3": "edit", "e": "edit"}


def _login(page, base, username):
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _task_id(page) -> int | None:
    value = page.get_attribute("#focus-panel", "data-task")
    return int(value) if value else None


def _wait_for_other_task(page, previous: int | None):
    page.wait_for_function(
        "prev => { const p = document.getElementById('focus-panel');"
        " return p && p.dataset.task !== String(prev) && !document.querySelector('.htmx-request'); }",
        arg=previous,
    )


def _decide(page, kind: str, key: str) -> tuple[int, str, str]:
    """Press the plan's key for the task shown and send it; (task id, decision, edited text expected)."""
    task = _task_id(page)
    decision = DECISIONS.get(kind, GENERIC)[key]
    page.keyboard.press(key)
    assert page.get_attribute(f"#focus-panel button.decision[data-decision={decision}]", "aria-pressed") == "true"
    edited = ""
    if decision == "edit" and kind == "task_label":
        current = page.eval_on_selector("#id_edited_text", "el => el.value")
        page.keyboard.press("ArrowDown")  # the next category of the vocabulary
        edited = TASK_CATEGORIES[TASK_CATEGORIES.index(current) + 1]
        page.keyboard.press("Control+Enter")
    elif decision == "edit":
        page.keyboard.press("Control+End")
        page.keyboard.type(" (checked by a person)")
        edited = page.eval_on_selector("#id_edited_text", "el => el.value").strip()
        page.keyboard.press("Control+Enter")
    else:
        page.keyboard.press("Enter")
    _wait_for_other_task(page, task)
    return task, decision, edited


def test_a_reviewer_reviews_ten_items_of_every_queue_by_keyboard_and_the_gates_open(page, live_server):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    round_ = make_round()
    for kind in KINDS:
        for n in range(PER_KIND):
            fields = {"contested": n == 4} if kind == "verdict" else {}
            build(kind, round_, **fields)
    reviewer = UserFactory(role=Role.REVIEWER)
    base = live_server.url
    _login(page, base, reviewer.username)
    page.click("nav >> text=Review")
    assert page.locator("[data-testid=queue-verdict]").get_attribute("data-waiting") == str(PER_KIND)
    page.screenshot(path=SCREENSHOTS / "review-overview.png", full_page=True)

    for kind in KINDS:
        page.goto(f"{base}/review/{kind}/")
        page.wait_for_selector("#focus-panel[data-task]")
        page.screenshot(path=SCREENSHOTS / f"review-focus-{kind}.png", full_page=True)
        expected = {}
        for step, key in enumerate(PLANS[kind]):
            if kind == "rewrite" and step == 3:
                _skip_back_and_forth(page)
            if kind == "answer" and step == 1:
                _draft_help_and_discard(page)
            task, decision, edited = _decide(page, kind, key)
            expected[task] = (decision, edited)
        page.wait_for_selector("[data-testid=empty-queue]")
        assert page.inner_text("[data-testid=open-count]") == "0"
        assert gate_open_count(round_id=round_.pk, kind=kind) == 0
        recorded = {t.pk: (t.decision, t.edited_text) for t in ReviewTask.objects.filter(kind=kind)}
        assert recorded == expected and len(expected) == PER_KIND
        assert set(ReviewVerdict.objects.filter(task__kind=kind).values_list("reviewer", flat=True)) == {reviewer.pk}
    page.screenshot(path=SCREENSHOTS / "review-empty.png", full_page=True)

    page.click("text=all queues")
    for kind in KINDS:
        card = page.locator(f"[data-testid=queue-{kind}]")
        assert card.get_attribute("data-waiting") == "0"
        assert card.locator("[data-testid=count-done]").inner_text() == str(PER_KIND)
    assert page.locator("[data-testid^=overturns-] tr.review-total td").first.inner_text() == "all"
    page.screenshot(path=SCREENSHOTS / "review-overview-done.png", full_page=True)
    page.click("[data-testid=queue-verdict] >> text=table view")
    page.wait_for_selector("[data-testid=task-table]")
    assert page.locator("[data-testid=task-table] tbody tr").count() == PER_KIND
    page.screenshot(path=SCREENSHOTS / "review-table-verdict.png", full_page=True)


def _skip_back_and_forth(page):
    """j skips the held task (the next one is claimed); k walks back to it on its own page, where it is
    decided with the plan's next key like any other."""
    skipped = _task_id(page)
    page.keyboard.press("j")
    _wait_for_other_task(page, skipped)
    assert page.inner_text("[data-testid=notice]").startswith(f"Task #{skipped} skipped")
    held = _task_id(page)
    page.keyboard.press("k")
    page.wait_for_url(f"**/review/rewrite/{skipped}/")
    assert _task_id(page) == skipped
    assert ReviewTask.objects.get(pk=held).status == "claimed"  # walking back kept the claim


def _draft_help_and_discard(page):
    task = _task_id(page)
    page.keyboard.press("2")
    page.keyboard.press("Control+s")
    page.wait_for_selector("[data-testid=draft-saved]")
    page.keyboard.press("?")
    assert page.is_visible("[data-testid=help]")
    page.screenshot(path=SCREENSHOTS / "review-help.png", full_page=True)
    page.keyboard.press("Escape")
    assert not page.is_visible("[data-testid=help]")
    page.keyboard.press("Backspace")
    page.wait_for_selector("[data-testid=notice] >> text=Draft discarded.")
    assert _task_id(page) == task
    assert page.get_attribute("#focus-panel button.decision[data-decision=reject]", "aria-pressed") == "false"


def test_a_viewer_sees_no_decision_buttons_and_a_forged_post_is_refused(page, live_server):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    task = verdict_task(make_round())
    viewer = UserFactory(role=Role.VIEWER)
    base = live_server.url
    _login(page, base, viewer.username)
    page.goto(f"{base}/review/verdict/")
    page.wait_for_selector("[data-testid=read-only]")
    assert page.locator("#focus-panel button.decision").count() == 0
    assert page.locator("[data-testid=decision-form]").count() == 0
    page.screenshot(path=SCREENSHOTS / "review-viewer.png", full_page=True)
    page.keyboard.press("1")
    page.keyboard.press("Enter")
    page.goto(f"{base}/review/verdict/table/")
    assert page.locator("input[name=task]").count() == 0 and page.locator("[data-testid=bulk-accept]").count() == 0
    # A forged POST with a valid CSRF token: the form the page does not show, built by hand.
    page.evaluate(
        """([url]) => {
            const form = document.createElement('form');
            form.method = 'post'; form.action = url;
            const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
            for (const [name, value] of [['csrfmiddlewaretoken', token], ['decision', 'accept']]) {
                const input = document.createElement('input');
                input.type = 'hidden'; input.name = name; input.value = value; form.appendChild(input);
            }
            document.body.appendChild(form); form.submit();
        }""",
        [f"/review/verdict/{task.pk}/decide/"],
    )
    page.wait_for_selector("[data-testid=error-403]")
    assert "This needs the reviewer role" in page.inner_text("[data-testid=reason]")
    page.screenshot(path=SCREENSHOTS / "review-403.png", full_page=True)
    assert ReviewTask.objects.get(pk=task.pk).status == "open" and not ReviewVerdict.objects.exists()


def test_an_answer_holding_script_renders_inert(page, live_server):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    evil = (
        "Here is my answer.\n\n<script>window.__pwned = 'script'; alert('script')</script>\n\n"
        "<img src=x onerror=\"window.__pwned = 'img'; alert('img')\">\n\n"
        "<iframe srcdoc=\"<script>parent.__pwned = 'iframe'; parent.alert('iframe')</script>\"></iframe>\n\n"
        "[click me](javascript:window.__pwned='link';alert('link')) and "
        "<a href=\"javascript:alert('raw')\">raw link</a> and [a real site](https://example.com/docs)"
    )
    verdict_task(make_round(), teacher=evil, student="[second](javascript:alert('student'))")
    reviewer = UserFactory(role=Role.REVIEWER)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _login(page, live_server.url, reviewer.username)
    page.goto(f"{live_server.url}/review/verdict/")
    answer = page.locator("[data-testid=teacher-answer] .md")
    answer.wait_for()
    for link in page.locator("#focus-panel .md a").all():  # clicking what looks like a link does nothing
        href = link.get_attribute("href") or ""
        assert not href.lower().lstrip().startswith("javascript:") and link.get_attribute("rel")
    assert answer.locator("script, img, iframe, object, embed, svg").count() == 0
    assert page.locator("#focus-panel iframe, #focus-panel img").count() == 0
    assert "<script>" in answer.inner_text() and "javascript:" in answer.inner_text()  # shown as text
    assert answer.locator("a[href='https://example.com/docs']").get_attribute("rel") == "noopener noreferrer nofollow"
    page.wait_for_load_state("load")  # the image's error (had it been an image) has fired by now
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    page.screenshot(path=SCREENSHOTS / "review-untrusted-answer.png", full_page=True)


def test_leaving_the_focus_view_gives_the_held_task_back(page, live_server):
    round_ = make_round()
    task = verdict_task(round_)
    reviewer = UserFactory(role=Role.REVIEWER)
    _login(page, live_server.url, reviewer.username)
    page.goto(f"{live_server.url}/review/verdict/")
    page.wait_for_selector(f"#focus-panel[data-task='{task.pk}'][data-current='1']")
    assert ReviewTask.objects.get(pk=task.pk).status == "claimed"
    page.click("text=all queues")  # pagehide sends the release beacon
    page.wait_for_selector("[data-testid=queue-verdict]")
    for _ in range(50):  # the beacon is sent as the page goes; its request may land just after
        if ReviewTask.objects.get(pk=task.pk).status == "open":
            break
        page.wait_for_timeout(100)
    assert ReviewTask.objects.get(pk=task.pk).status == "open"
    assert ReviewAssignment.objects.get(task=task, reviewer=reviewer).status == "released"
