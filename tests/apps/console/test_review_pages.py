"""The review pages people read: the overview's counts and agreement, the focus view of every kind with
its subject, readers' view without decision buttons, the table's filters, keyset pages that walk every
row once, and a number of queries that does not grow with the page."""

import pytest
from django.urls import reverse

from apps.core.roles import Role
from apps.experiments.models import TaskLabel
from apps.judging.models import Judgment
from apps.reviews.models import ReviewTask
from apps.reviews.services import review_decide
from tests.apps.console.review_builders import (
    KINDS,
    build,
    generated_task,
    make_round,
    rewrite_task,
    verdict_task,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def _login(client, role):
    user = UserFactory(role=role)
    client.force_login(user)
    return user


def test_the_overview_counts_each_queue_by_status_and_links_its_views(client):
    round_ = make_round()
    for kind in KINDS:
        build(kind, round_)
    build("verdict", round_)
    reviewer = _login(client, Role.REVIEWER)
    decided = ReviewTask.objects.filter(kind="verdict").first()
    review_decide(reviewer=reviewer, task_id=decided.pk, decision="accept")
    page = client.get(reverse("reviews:overview"))
    assert page.status_code == 200
    cards = {c.kind: c for c in page.context["cards"]}
    assert set(cards) == set(KINDS)
    assert cards["verdict"].counts == {"open": 1, "claimed": 0, "conflict": 0, "done": 1}
    assert cards["answer"].counts == {"open": 1, "claimed": 0, "conflict": 0, "done": 0}
    body = page.content.decode()
    for kind in KINDS:
        assert reverse("reviews:queue", args=[kind]) in body and reverse("reviews:table", args=[kind]) in body
    # The judge's calls reviewers confirmed, by category, for the round.
    (block,) = page.context["overturns"]
    assert block.round == round_ and block.rows[-1].category == "all" and block.rows[-1].confirmed == 1


def test_the_overview_is_scoped_to_an_experiment_or_a_round(client):
    one, other = make_round(), make_round()
    verdict_task(one)
    verdict_task(other)
    verdict_task(other)
    _login(client, Role.VIEWER)
    page = client.get(reverse("reviews:overview"), {"experiment": other.experiment_id})
    assert {c.kind: c.counts["open"] for c in page.context["cards"]}["verdict"] == 2
    page = client.get(reverse("reviews:overview"), {"round": one.pk})
    assert {c.kind: c.counts["open"] for c in page.context["cards"]}["verdict"] == 1
    page = client.get(reverse("reviews:overview"), {"round": "abc"})
    assert page.status_code == 400 and 'data-testid="scope-errors"' in page.content.decode()


def test_agreement_per_queue_and_per_reviewer_with_overlap(client):
    round_ = make_round()
    tasks = [verdict_task(round_, required=2) for _ in range(4)]
    alice, bob = UserFactory(role=Role.REVIEWER), UserFactory(role=Role.REVIEWER)
    for n, task in enumerate(tasks):
        review_decide(reviewer=alice, task_id=task.pk, decision="accept")
        review_decide(reviewer=bob, task_id=task.pk, decision="accept" if n < 2 else ("flip" if n == 2 else "accept"))
    _login(client, Role.VIEWER)
    page = client.get(reverse("reviews:overview"), {"round": round_.pk})
    card = {c.kind: c for c in page.context["cards"]}["verdict"]
    assert card.counts["conflict"] == 1 and card.counts["done"] == 3
    assert card.agreement.n == 4 and card.agreement.percent == pytest.approx(75.0)
    (pair,) = card.pairs
    assert {pair.reviewer_a, pair.reviewer_b} == {alice.username, bob.username} and pair.agreement.n == 4
    body = page.content.decode()
    assert "Agreement 75.0%" in body and "κ" in body


@pytest.mark.parametrize("kind", KINDS)
def test_the_focus_view_of_every_kind_shows_its_subject_and_numbered_buttons(client, kind):
    build(kind, make_round())
    _login(client, Role.REVIEWER)
    page = client.get(reverse("reviews:queue", args=[kind]))
    assert page.status_code == 200
    body = page.content.decode()
    task = page.context["task"]
    assert task is not None and page.context["can_decide"] and not page.context["item"].missing
    assert f'data-release-url="{reverse("reviews:release", args=[kind, task.pk])}"' in body
    for n, button in enumerate(page.context["buttons"], start=1):
        assert f'data-keys="{button.data_keys}"' in body and str(n) in button.keys
    expected = {
        "verdict": ['data-testid="teacher-answer"', 'data-testid="student-answer"', 'data-testid="gap">2.00', "τ 1.00"],
        "rewrite": ['data-testid="diff"', "<ins>", "chain_of_thought"],
        "generated": ['data-testid="seed"', "ROUGE-L 0.420", "from a hard seed"],
        "rationale": ["Teacher's label <b>B</b>", "gold label <b>A</b>", 'data-testid="labels-disagree"'],
        "task_label": ["Category now <b>Writing</b>", '<select id="id_edited_text" name="edited_text" data-editor>'],
        "invalid_reply": ["I think both are fine &lt;b&gt;really&lt;/b&gt;.", "no line &#x27;Score of Assistant 1"],
        "answer": ["Paris is the capital of France."],
    }[kind]
    for fragment in expected:
        assert fragment in body, fragment


def test_the_verdict_buttons_name_what_the_call_becomes(client):
    verdict_task(make_round(), verdict="easy")
    _login(client, Role.REVIEWER)
    labels = [b.label for b in client.get(reverse("reviews:queue", args=["verdict"])).context["buttons"]]
    assert labels == ["Confirm easy", "Flip to hard", "Mark invalid"]


def test_untrusted_answers_render_sanitised_in_the_focus_view(client):
    evil = (
        "<script>alert('x')</script> <img src=x onerror=alert(1)> <iframe srcdoc=\"<script>alert(2)</script>\">"
        "</iframe> [click](javascript:alert(3)) **bold**"
    )
    verdict_task(make_round(), teacher=evil)
    _login(client, Role.REVIEWER)
    body = client.get(reverse("reviews:queue", args=["verdict"])).content.decode()
    answer = body.split('data-testid="teacher-answer"')[1].split("</article>")[0]
    assert "<script" not in answer and "<img" not in answer and "<iframe" not in answer and "href" not in answer
    assert "&lt;script&gt;" in answer and "<strong>bold</strong>" in answer


def test_a_viewer_reads_the_queue_without_claiming_or_decision_buttons(client):
    round_ = make_round()
    first, second = verdict_task(round_, contested=True), verdict_task(round_)
    _login(client, Role.VIEWER)
    page = client.get(reverse("reviews:queue", args=["verdict"]))
    body = page.content.decode()
    assert page.context["task"] == first and not page.context["can_decide"]
    assert 'data-testid="decision-form"' not in body and 'name="decision"' not in body
    assert "deciding needs the reviewer role" in body and 'data-current="0"' in body
    assert ReviewTask.objects.get(pk=first.pk).status == "open"  # a reader holds nothing
    assert page.context["nav"].next_url == reverse("reviews:task", args=["verdict", second.pk])
    table = client.get(reverse("reviews:table", args=["verdict"])).content.decode()
    assert 'name="task"' not in table and 'data-testid="bulk-accept"' not in table


def test_an_unknown_queue_is_404_with_the_queues_named(client):
    _login(client, Role.VIEWER)
    response = client.get("/review/cooking/")
    assert response.status_code == 404


def test_the_empty_queue_says_so(client):
    _login(client, Role.REVIEWER)
    body = client.get(reverse("reviews:queue", args=["rewrite"])).content.decode()
    assert "Nothing waiting in this queue" in body and "Every task here is decided." in body


def _walk(client, kind, params=None):
    """Every task id of the table, page by page forwards, then back again."""
    url = reverse("reviews:table", args=[kind])
    seen, pages, page = [], [], client.get(url, params or {})
    while True:
        assert page.status_code == 200
        ids = [item.task.pk for item in page.context["items"]]
        seen += ids
        pages.append(ids)
        if not page.context["next_cursor"]:
            break
        page = client.get(url, {**(params or {}), "after": page.context["next_cursor"]})
    walked = []  # and back again from the last page: the same pages
    while page.context["previous_cursor"]:
        page = client.get(url, {**(params or {}), "before": page.context["previous_cursor"]})
        walked.insert(0, [item.task.pk for item in page.context["items"]])
    assert walked == pages[:-1]
    return seen


def test_keyset_pages_walk_every_task_once_in_queue_order(client):
    round_ = make_round()
    tasks = [verdict_task(round_, contested=n % 7 == 0, gap=n / 10) for n in range(123)]
    _login(client, Role.VIEWER)
    seen = _walk(client, "verdict")
    expected = [t.pk for t in sorted(tasks, key=lambda t: (-t.priority, t.pk))]
    assert seen == expected and len(set(seen)) == 123
    assert [len(ids) for ids in [seen[:50], seen[50:100], seen[100:]]] == [50, 50, 23]


def test_keyset_pages_keep_the_filters(client):
    round_ = make_round()
    for n in range(70):
        verdict_task(round_, gap=float(n % 5), contested=n % 2 == 0)
    _login(client, Role.VIEWER)
    params = {"gap_min": "1", "gap_max": "3", "contested": "yes"}
    seen = _walk(client, "verdict", params)
    ok = set(Judgment.objects.filter(gap__gte=1, gap__lte=3, contested=True).values_list("pk", flat=True))
    expected = ReviewTask.objects.filter(kind="verdict", subject_id__in=ok).order_by("-priority", "pk")
    assert seen == list(expected.values_list("pk", flat=True)) and len(seen) == 21


def test_the_table_filters(client):
    round_ = make_round()
    hard = generated_task(round_, origin="hard", text="Write a sonnet about breakfast.")
    easy = generated_task(round_, origin="easy", text="List the planets.")
    verdicts = [
        verdict_task(round_, gap=g, contested=c, verdict=v) for g, c, v in ((0.5, False, "easy"), (3, True, "hard"))
    ]
    labelled = verdict_task(round_, text="Differentiate x squared.", category="Math")
    relabelled = verdict_task(round_, text="Sum the series.")
    TaskLabel.objects.create(
        experiment=round_.experiment, instruction=relabelled.subject.instruction, category="Math", source="llm"
    )
    reviewer = UserFactory(role=Role.REVIEWER)
    review_decide(reviewer=reviewer, task_id=verdicts[0].pk, decision="flip")
    _login(client, Role.VIEWER)

    def ids(kind, **params):
        page = client.get(reverse("reviews:table", args=[kind]), params)
        assert page.status_code == 200, page.content
        return {item.task.pk for item in page.context["items"]}

    assert ids("generated", origin="hard") == {hard.pk}
    assert ids("generated", q="BREAKFAST") == {hard.pk}
    assert ids("generated", q="planets") == {easy.pk}
    assert ids("generated", q="break sonnet") == {hard.pk}  # every word, at the start of a word
    assert ids("generated", q="fast") == set()
    assert ids("verdict", q="series") == {relabelled.pk}
    reply = build("invalid_reply", round_, reply="The scores are missing entirely.")
    assert ids("invalid_reply", q="missing ENTIRELY") == {reply.pk}
    assert ids("verdict", contested="yes") == {verdicts[1].pk}
    assert ids("verdict", gap_min="1", gap_max="2.5") == {labelled.pk, relabelled.pk}
    assert ids("verdict", origin="easy") == {verdicts[0].pk}
    assert ids("verdict", status="done") == {verdicts[0].pk}
    assert ids("verdict", reviewer=reviewer.username) == {verdicts[0].pk}
    assert ids("verdict", category="Math") == {labelled.pk, relabelled.pk}
    assert ids("verdict", experiment=round_.experiment_id, round=round_.pk) == {
        t.pk for t in (*verdicts, labelled, relabelled)
    }
    assert ids("verdict", round=make_round().pk) == set()
    page = client.get(reverse("reviews:table", args=["verdict"]), {"gap_min": "3", "gap_max": "1"})
    assert page.status_code == 400 and "The gap range is empty" in page.content.decode()
    page = client.get(reverse("reviews:table", args=["verdict"]), {"after": "nonsense"})
    assert page.status_code == 400 and "is not a page cursor" in page.content.decode()
    partial = client.get(reverse("reviews:table", args=["verdict"]), {"contested": "yes"}, **HX).content.decode()
    assert partial.lstrip().startswith('<div id="task-rows"') and "<html" not in partial


def test_the_rewrite_diff_is_word_level_and_escaped(client):
    rewrite_task(make_round(), original="add <two> and two.", rewrite="First add <two> and two, then stop.")
    _login(client, Role.REVIEWER)
    body = client.get(reverse("reviews:queue", args=["rewrite"])).content.decode()
    diff = body.split('class="review-diff">')[1].split("</div>")[0]
    assert diff == "<ins>First </ins>add &lt;two&gt; and <del>two.</del><ins>two, then stop.</ins>"


@pytest.mark.parametrize("kind", KINDS)
def test_the_number_of_queries_does_not_grow_with_the_page(client, kind, django_assert_max_num_queries):
    round_ = make_round()
    for _ in range(3):
        build(kind, round_)
    _login(client, Role.REVIEWER)
    url = reverse("reviews:table", args=[kind])
    # session, user, groups; scope choices, four capped counts; the page, the other direction; rounds,
    # subjects (and lineage), task labels, votes; and for task labels the classifier's versions.
    bound = 14 + (2 if kind == "task_label" else 0)
    with django_assert_max_num_queries(bound):
        small = client.get(url)
    for _ in range(47):
        build(kind, make_round(experiment=round_.experiment, index=round_.index + 1 + _))
    with django_assert_max_num_queries(bound):
        full = client.get(url)
    assert len(small.context["items"]) == 3 and len(full.context["items"]) == 50
    with django_assert_max_num_queries(bound + 7):  # the claim (a transaction, a lock, the slot) and the item
        assert client.get(reverse("reviews:queue", args=[kind])).status_code == 200
    with django_assert_max_num_queries(8):  # one grouped count, and two for the agreement of a queue in use
        assert client.get(reverse("reviews:overview")).status_code == 200


def test_the_queue_line_counts_up_to_a_cap():
    from apps.console.review_queries import queue_counts

    round_ = make_round()
    for _ in range(5):
        verdict_task(round_)
    counts = queue_counts(kind="verdict", round_id=round_.pk, cap=3)
    assert (counts["open"].n, counts["open"].capped, str(counts["open"])) == (3, True, "3+")
    done = counts["done"]
    assert (done.n, done.capped, str(done), bool(done)) == (0, False, "0", False)
    exact = queue_counts(kind="verdict", experiment_id=round_.experiment_id)
    assert str(exact["open"]) == "5" and not exact["open"].capped


def test_the_task_label_queue_shows_the_classifiers_held_out_accuracy(client):
    from django.utils import timezone

    from apps.llm.models import ClassifierVersion

    build("task_label", make_round())
    ClassifierVersion.objects.create(
        status="ready", reason="review", examples=180, review_examples=20, categories=9, heldout_size=40,
        accuracy=0.875, finished_at=timezone.now(),
    )  # fmt: skip
    _login(client, Role.OPERATOR)
    for url in (reverse("reviews:queue", args=["task_label"]), reverse("reviews:table", args=["task_label"])):
        body = client.get(url).content.decode()
        assert 'data-testid="classifier-versions"' in body and "Retrain now" in body
        assert 'data-testid="classifier-accuracy">88%' in body
    verdicts = client.get(reverse("reviews:queue", args=["verdict"])).content.decode()
    assert 'data-testid="classifier-versions"' not in verdicts
