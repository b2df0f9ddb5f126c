"""Cursor pagination over large tables: following `next` visits every row exactly once, in order, with
the same few queries on every page however deep; filters narrow the walk; `previous` walks back."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.roles import Role
from apps.datasets.formats import content_hash
from apps.datasets.models import Instruction
from apps.experiments.models import Experiment
from apps.llm.models import LLMCall, LLMCallUse
from tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db
CATEGORIES = ("math", "code", "writing", "")
# Per page: the token and its user, the user's role groups, the page itself (+ a prefetch where nested).
MAX_QUERIES = 5


def _instructions(dataset, n: int, start: int = 0) -> list[int]:
    rows = [
        Instruction(
            dataset=dataset,
            text=f"Question number {i} of {dataset.name}",
            task_category=CATEGORIES[i % len(CATEGORIES)],
            origin="generated" if i % 5 == 0 else "imported",
            content_hash=content_hash(f"Question number {i} of {dataset.name}", ""),
        )
        for i in range(start, start + n)
    ]
    Instruction.objects.bulk_create(rows, batch_size=1000)
    return list(Instruction.objects.filter(dataset=dataset).order_by("pk").values_list("pk", flat=True))


def _walk(api, url, params):
    """Every page from the first, following `next`: the ids in visiting order and each page's query count."""
    ids, queries = [], []
    response = api.get(url, params)
    while True:
        assert response.status_code == 200, response.content[:300]
        body = response.json()
        ids += [row["id"] for row in body["results"]]
        queries.append(response.queries)
        if not body["next"]:
            return ids, queries, body
        response = api.get(body["next"])


@pytest.fixture
def api(api_for):
    """A viewer's client whose responses carry the number of queries each request made."""
    client = api_for(Role.VIEWER)
    plain = client.get

    def get(*args, **kwargs):
        with CaptureQueriesContext(connection) as captured:
            response = plain(*args, **kwargs)
        response.queries = len(captured)
        return response

    client.get = get
    return client


def test_a_cursor_walks_five_thousand_instructions_once_each_with_bounded_queries(api):
    big, small = DatasetFactory(name="big"), DatasetFactory(name="small")
    big_ids = _instructions(big, 4000)
    small_ids = _instructions(small, 1000)

    ids, queries, _ = _walk(api, "/api/v1/instructions/", {"page_size": 500})
    assert ids == sorted(big_ids + small_ids) and len(ids) == 5000 == len(set(ids))
    assert len(queries) == 10 and max(queries) <= MAX_QUERIES and len(set(queries)) == 1

    ids, queries, _ = _walk(api, "/api/v1/instructions/", {"dataset": small.pk, "page_size": 300})
    assert ids == small_ids and len(queries) == 4 and max(queries) <= MAX_QUERIES

    math = list(Instruction.objects.filter(dataset=big, task_category="math").values_list("pk", flat=True))
    ids, queries, _ = _walk(api, f"/api/v1/datasets/{big.pk}/instructions/", {"category": "math"})
    assert ids == sorted(math) and len(ids) == 1000 and len(queries) == 20 and max(queries) <= MAX_QUERIES

    ids, _, _ = _walk(api, "/api/v1/instructions/", {"dataset": big.pk, "origin": "generated", "page_size": 500})
    generated = Instruction.objects.filter(dataset=big, origin="generated").order_by("pk")
    assert ids == list(generated.values_list("pk", flat=True)) and len(ids) == 800

    ids, _, _ = _walk(api, "/api/v1/instructions/", {"search": "NUMBER 12 OF SMALL", "page_size": 500})
    expected = Instruction.objects.filter(dataset=small, text__icontains="number 12 of small").order_by("pk")
    assert ids == list(expected.values_list("pk", flat=True)) and len(ids) == 1


def test_previous_walks_back_to_the_first_page(api):
    dataset = DatasetFactory()
    all_ids = _instructions(dataset, 250)
    first = api.get("/api/v1/instructions/", {"page_size": 100}).json()
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()
    assert [r["id"] for r in third["results"]] == all_ids[200:] and third["next"] is None
    back = api.get(third["previous"]).json()
    assert [r["id"] for r in back["results"]] == all_ids[100:200]
    assert [r["id"] for r in api.get(back["previous"]).json()["results"]] == all_ids[:100]


def test_rows_added_during_a_walk_are_neither_skipped_nor_repeated(api):
    dataset = DatasetFactory()
    _instructions(dataset, 300)
    first = api.get("/api/v1/instructions/", {"page_size": 100}).json()
    every = _instructions(dataset, 50, start=300)  # 50 appended while the client is on page one
    ids, _, _ = _walk(api, first["next"], None)
    seen = [r["id"] for r in first["results"]] + ids
    assert seen == every and len(seen) == 350


def test_the_ledger_pages_newest_first_with_its_uses_in_one_query(api):
    experiment = Experiment.objects.create(name="ledger", recipe="lion", dataset=DatasetFactory())
    calls = LLMCall.objects.bulk_create(
        [LLMCall(request_hash=f"{i:064x}", model="m", request={"messages": []}, status="ok") for i in range(1200)]
    )
    LLMCallUse.objects.bulk_create(
        [LLMCallUse(call=call, experiment=experiment, stage="answer", item=str(call.pk)) for call in calls]
    )
    ids, queries, _ = _walk(api, "/api/v1/llm/calls/", {"page_size": 400, "experiment": experiment.pk})
    assert ids == sorted((c.pk for c in calls), reverse=True)
    assert len(queries) == 3 and max(queries) <= MAX_QUERIES + 1
    first = api.get("/api/v1/llm/calls/", {"page_size": 2}).json()["results"][0]
    assert first["uses"][0]["stage"] == "answer"
