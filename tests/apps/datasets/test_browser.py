"""The dataset browser: roles, text search (the same answer on SQLite and PostgreSQL, through the full-text
index on PostgreSQL), filters, keyset pagination both ways, HTMX partials, escaping and bad input."""

import re
from functools import partial

import pytest
from django.db import connection
from django.urls import reverse

from apps.core.roles import Role
from apps.datasets.categories import dataset_category_counts_rebuild
from apps.datasets.models import Instruction
from apps.datasets.selectors import dataset_id_range, instruction_filter, instruction_page, instruction_search
from tests.factories import DatasetFactory, InstructionFactory

pytestmark = pytest.mark.django_db

TEXTS = [
    ("Plan a healthy BREAKFAST for a week.", ""),
    ("Write a poem about the sea.", "Use the word breakfast once."),
    ("Explain photosynthesis to a child.", ""),
    ("Summarise this article about breakfasts in Spain.", "El desayuno…"),
    ("Translate 'good morning' into German.", ""),
    ("Give three tips for a calm morning routine.", "no breakfast involved"),
    ("List the planets of the solar system.", ""),
    ("What is 100% of 5?", "percent"),
    ("Find the word under_score in a sentence.", ""),
]


def _dataset(n_extra: int = 0):
    dataset = DatasetFactory()
    for k, (text, input_) in enumerate(TEXTS):
        InstructionFactory(
            dataset=dataset,
            text=text,
            input=input_,
            task_category=["brainstorming", "writing", ""][k % 3],
            reference_output="An answer." if k % 2 == 0 else "",
        )
    for k in range(n_extra):
        InstructionFactory(dataset=dataset, text=f"Filler instruction number {k}.", task_category="writing")
    # The factory writes rows directly, around the services that keep the size and the category counts.
    dataset.size = Instruction.objects.filter(dataset=dataset).count()
    dataset.save(update_fields=["size"])
    dataset_category_counts_rebuild(dataset_id=dataset.pk)
    return dataset


def _expected(dataset, predicate) -> list[int]:
    return [i.pk for i in Instruction.objects.filter(dataset=dataset).order_by("pk") if predicate(i)]


def _found(dataset, **filters) -> list[int]:
    qs = instruction_filter(dataset=dataset, **filters)
    return [i.pk for i in instruction_page(qs, id_range=dataset_id_range(dataset.pk), size=1000).rows]


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", text.lower())


SEARCHES = ["breakfast", "BreakFast", "break", "fast", "morning", "100", "under", "score", "a", "zzz",
            "  sea  ", "plan breakfast", "breakfast spain", "!!!"]  # fmt: skip


@pytest.mark.parametrize("q", SEARCHES)
def test_search_finds_the_rows_holding_every_word_at_a_words_start(q):
    dataset = _dataset()
    other = DatasetFactory()
    InstructionFactory(dataset=other, text="Another breakfast, elsewhere.")
    wanted = _words(q)

    def holds(i) -> bool:
        tokens = _words(i.text + " " + i.input)
        return bool(wanted) and all(any(t.startswith(w) for t in tokens) for w in wanted)

    expected = _expected(dataset, holds)
    assert _found(dataset, q=q) == expected
    known = {"breakfast": 4, "break": 4, "fast": 0, "plan breakfast": 1, "breakfast spain": 1, "!!!": 0}
    if q in known:  # the cases above are what they say, not empty or full by accident
        assert len(expected) == known[q]


def test_a_blank_search_is_no_filter():
    dataset = _dataset()
    assert _found(dataset, q="   ") == _expected(dataset, lambda i: True)


def test_filters_combine_with_search():
    dataset = _dataset()
    assert _found(dataset, category="writing") == _expected(dataset, lambda i: i.task_category == "writing")
    assert _found(dataset, reference="yes") == _expected(dataset, lambda i: i.reference_output != "")
    assert _found(dataset, reference="no") == _expected(dataset, lambda i: i.reference_output == "")
    assert _found(dataset, origin="generated") == []
    both = _found(dataset, q="breakfast", reference="yes")
    assert both == _expected(dataset, lambda i: "breakfast" in (i.text + i.input).lower() and i.reference_output)
    assert both  # the combination is not empty by accident


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the search index exists on PostgreSQL only")
def test_on_postgresql_the_search_is_answered_by_the_full_text_index():
    _dataset()
    # The predicate exactly as the browser sends it. Without a seq scan (a tiny table is otherwise read
    # whole) only the GIN index can answer it.
    qs = instruction_search(Instruction.objects.order_by(), "plan breakfast")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = qs.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "instruction_search" in plan, plan


def _interleaved():
    """A dataset whose rows another dataset's rows precede, interrupt and follow."""
    other = DatasetFactory()
    InstructionFactory.create_batch(6, dataset=other)
    dataset = _dataset(n_extra=23)
    InstructionFactory.create_batch(6, dataset=other)
    for k in range(6):
        InstructionFactory(dataset=dataset, text=f"Late number {k}.", task_category="writing")
    InstructionFactory.create_batch(3, dataset=other)
    return dataset


def test_the_id_range_is_the_datasets_first_and_last_id():
    dataset = _interleaved()
    ids = list(Instruction.objects.filter(dataset=dataset).values_list("pk", flat=True))
    assert dataset_id_range(dataset.pk) == (min(ids), max(ids))
    assert dataset_id_range(DatasetFactory().pk) is None
    page = instruction_page(Instruction.objects.none(), id_range=None)
    assert page.rows == [] and page.next_after is None and page.previous_before is None


@pytest.mark.parametrize("filters", [{}, {"category": "writing"}, {"q": "number"}, {"reference": "no"}])
def test_keyset_pages_walk_every_row_once_forwards_and_backwards(filters):
    dataset = _interleaved()
    expected = [i.pk for i in instruction_filter(dataset=dataset, **filters).order_by("pk")]
    assert len(expected) > 7
    qs = instruction_filter(dataset=dataset, **filters)
    at = partial(instruction_page, qs, id_range=dataset_id_range(dataset.pk), size=7)

    pages, page = [], at()
    assert page.previous_before is None
    while True:
        pages.append([r.pk for r in page.rows])
        if page.next_after is None:
            break
        page = at(after=page.next_after)
    assert [pk for p in pages for pk in p] == expected
    assert all(len(p) == 7 for p in pages[:-1])

    # From the last page back to the first by the "previous" cursors: every row once, in order.
    back = []
    while page.previous_before is not None:
        page = at(before=page.previous_before)
        back = [r.pk for r in page.rows] + back
        assert page.next_after is not None
    assert back + pages[-1] == expected
    # And forwards again from a page reached backwards.
    assert [r.pk for r in at(after=page.next_after).rows] == expected[len(page.rows) : len(page.rows) + 7]


def test_a_cursor_past_either_end_gives_an_empty_page_that_leads_back():
    dataset = _interleaved()
    at = partial(instruction_page, instruction_filter(dataset=dataset), id_range=dataset_id_range(dataset.pk), size=5)
    last = Instruction.objects.filter(dataset=dataset).order_by("-pk").first().pk
    page = at(after=last)
    assert page.rows == [] and page.next_after is None and page.previous_before == last + 1
    assert [r.pk for r in at(before=page.previous_before).rows][-1] == last
    first = Instruction.objects.filter(dataset=dataset).order_by("pk").first().pk
    page = at(before=first)
    assert page.rows == [] and page.previous_before is None and page.next_after == first - 1
    assert at(after=page.next_after).rows[0].pk == first
    with pytest.raises(ValueError, match="not both"):
        at(after=1, before=5)


def test_anonymous_visitors_are_sent_to_log_in(client):
    dataset = _dataset()
    row = Instruction.objects.filter(dataset=dataset).first()
    for url in (
        reverse("datasets:detail", args=[dataset.pk]),
        reverse("datasets:instruction", args=[dataset.pk, row.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_user_without_a_role_is_refused(client_for):
    dataset = _dataset()
    row = Instruction.objects.filter(dataset=dataset).first()
    client = client_for(None)
    assert client.get(reverse("datasets:detail", args=[dataset.pk])).status_code == 403
    assert client.get(reverse("datasets:instruction", args=[dataset.pk, row.pk])).status_code == 403


def _links(html: str) -> dict[str, str]:
    return {
        rel: href.replace("&amp;", "&") for href, rel in re.findall(r'<a href="([^"]+)"[^>]*rel="(next|prev)"', html)
    }


def _row_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<td class="num"><a href="/datasets/\d+/instructions/(\d+)/">', html)]


def test_a_viewer_pages_through_the_view_with_filters_kept_in_the_links(client_for):
    dataset = _dataset(n_extra=120)
    client = client_for(Role.VIEWER)
    url = reverse("datasets:detail", args=[dataset.pk])
    response = client.get(url, {"category": "writing"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html and 'name="q"' in html
    expected = [i.pk for i in Instruction.objects.filter(dataset=dataset, task_category="writing").order_by("pk")]
    assert 'data-testid="category-count"' in html and f"{len(expected)} instructions in" in html

    seen = [r.pk for r in response.context["page"].rows]
    links = _links(html)
    assert "prev" not in links
    while "next" in links:
        assert "category=writing" in links["next"]
        response = client.get(url + links["next"], HTTP_HX_REQUEST="true")
        html = response.content.decode()
        assert response.status_code == 200 and "<html" not in html and 'id="instruction-rows"' in html
        rows = _row_ids(html)
        seen += rows
        links = _links(html)
    assert seen == expected
    assert "prev" in links
    back = client.get(url + links["prev"])
    start = expected.index(rows[0])
    assert [r.pk for r in back.context["page"].rows] == expected[start - 50 : start]


def test_category_choices_carry_their_counts_from_the_counts_table(client_for):
    dataset = _dataset()
    response = client_for(Role.VIEWER).get(reverse("datasets:detail", args=[dataset.pk]))
    assert response.context["categories"] == [("brainstorming", 3), ("writing", 3)]
    assert response.context["uncategorised"] == 3
    assert "brainstorming (3)" in response.content.decode()


def test_bad_filters_get_a_clear_error_not_a_silent_full_list(client_for):
    dataset = _dataset()
    client = client_for(Role.VIEWER)
    url = reverse("datasets:detail", args=[dataset.pk])
    response = client.get(url, {"after": "-3"})
    assert response.status_code == 400
    assert "after: Ensure this value is greater than or equal to 0." in response.content.decode()
    response = client.get(url, {"after": "2", "before": "9"})
    assert response.status_code == 400 and "not both" in response.content.decode()
    response = client.get(url, {"reference": "maybe"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'data-testid="filter-errors"' in response.content.decode()


def test_instruction_text_is_escaped_and_the_page_links_to_its_provenance(client_for):
    dataset = DatasetFactory()
    row = InstructionFactory(dataset=dataset, text='<script>alert(1)</script><img src=x onerror="alert(2)">')
    client = client_for(Role.VIEWER)
    for url in (
        reverse("datasets:detail", args=[dataset.pk]),
        reverse("datasets:instruction", args=[dataset.pk, row.pk]),
    ):
        html = client.get(url).content.decode()
        assert "<script>alert(1)" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    html = client.get(reverse("datasets:instruction", args=[dataset.pk, row.pk])).content.decode()
    assert reverse("experiments:provenance", args=[row.pk]) in html
