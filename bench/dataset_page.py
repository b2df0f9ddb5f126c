"""The dataset browser at 100,000 and 1,000,000 instructions on PostgreSQL: server time of the dataset
page, of a search, and of page 500 by keyset against the OFFSET way, all in the same run.

Rows are real instructions from ../shared/data (Alpaca, AlpacaEval, Self-Instruct), each made distinct
by a numbered variant, half with a reference output, spread over 13 task categories; they are stored by
the real import (`dataset_import_file`: binary COPY, the full-text index and the category counts kept
as rows arrive), into a throw-away database `retort_browser_bench`. Server time is a request through
Django's test client in this process: middleware, session and role checks, queries and the template.

Baselines, measured in the same run on the same rows:
- page 500 (rows 24,951-25,000) and a deep page by LIMIT/OFFSET, against the keyset cursor (id > after);
- the category list as the page read it before (DISTINCT over the dataset's rows), against the kept
  counts (DatasetCategoryCount);
- the search without the full-text index (dropped inside a transaction that is rolled back), against
  the same request with it; and the import without it (the first size), for what it costs to keep.

    python bench/dataset_page.py [--sizes 100000,1000000] [--repeat 7]
"""

import argparse
import json
import statistics
import time
from contextlib import contextmanager

from _setup import OUT, SHARED, machine, use_bench_database

CATEGORIES = [
    "brainstorming", "classification", "closed_qa", "coding", "creative_writing", "extraction", "general_qa",
    "information_extraction", "math", "open_qa", "rewriting", "roleplay", "summarization",
]  # fmt: skip
# Words to search for: rare in the data, common, and absent (the worst case for a scan: it reads every row).
SEARCHES = {"rare": "haiku", "common": "the", "absent": "zqxwvy"}
PAGE = 50
SLOW_S = 2.0


def records_file(path, n: int, offset: int) -> None:
    from import_export import real_records

    base = real_records()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(offset, offset + n):
            r = base[i % len(base)]
            record = {
                "instruction": f"{r['instruction']} (variant {i})",
                "input": r["input"],
                "output": r["output"] if i % 2 == 0 else "",
                "category": CATEGORIES[i % len(CATEGORIES)],
            }
            f.write(json.dumps(record) + "\n")


def timed(fn, repeat: int) -> float:
    """Median wall time of `fn` in milliseconds, after one warm-up call. A call slower than SLOW_S (the
    index-less baselines at a million rows) is timed once more after the warm-up, which keeps the run's
    time bounded."""
    start = time.perf_counter()
    fn()
    if time.perf_counter() - start > SLOW_S:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1000
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


@contextmanager
def without_search_indexes():
    """The full-text search index dropped for the block's queries, then restored by rolling back."""
    from django.db import connection, transaction

    class Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("DROP INDEX instruction_search")
            yield
            raise Rollback
    except Rollback:
        pass


def import_rows(path, name: str) -> float:
    from apps.datasets.importing import dataset_import_file

    start = time.perf_counter()
    report = dataset_import_file(path=path, dataset_name=name)
    assert report.problem_count == 0, report.problems[:3]
    return time.perf_counter() - start


def measure(dataset, client, repeat: int) -> dict:
    from django.db.models import Count

    from apps.datasets.models import DatasetCategoryCount, Instruction
    from apps.datasets.selectors import dataset_id_range, instruction_page

    url = f"/datasets/{dataset.pk}/"

    def get(query: str = "") -> None:
        response = client.get(url + query, SERVER_NAME="localhost", secure=True)
        assert response.status_code == 200, response.status_code

    rows = Instruction.objects.filter(dataset=dataset)
    ids = rows.order_by("id").values_list("id", flat=True)
    fields = ("id", "dataset_id", "text", "input", "task_category", "origin", "reference_output", "gold_label")
    out: dict = {"rows": dataset.size}

    out["page_ms"] = timed(get, repeat)
    out["categories_old_ms"] = timed(
        lambda: list(
            rows.exclude(task_category="").order_by("task_category").values_list("task_category", flat=True).distinct()
        ),
        max(3, repeat // 2),
    )
    out["categories_new_ms"] = timed(
        lambda: list(DatasetCategoryCount.objects.filter(dataset=dataset).values_list("category", "count")), repeat
    )
    truth = dict(rows.exclude(task_category="").order_by().values_list("task_category").annotate(n=Count("id")))
    kept = dict(DatasetCategoryCount.objects.filter(dataset=dataset).values_list("category", "count"))
    assert kept == truth, "the kept counts differ from the rows"

    out["search"] = {}
    for label, word in SEARCHES.items():
        with_index = timed(lambda w=word: get(f"?q={w}"), repeat)
        with without_search_indexes():
            without = timed(lambda w=word: get(f"?q={w}"), max(3, repeat // 2))
        out["search"][label] = {"word": word, "with_index_ms": with_index, "without_index_ms": without}

    for label, page in (("page_500", 500), ("deep", dataset.size // PAGE // 2)):
        offset = (page - 1) * PAGE
        after = ids[offset - 1]  # the cursor the previous page's "next" link carries
        keyset_view = timed(lambda a=after: get(f"?after={a}"), repeat)
        keyset_sql = timed(
            lambda a=after: instruction_page(rows, id_range=dataset_id_range(dataset.pk), after=a, size=PAGE), repeat
        )
        offset_sql = timed(lambda o=offset: list(rows.only(*fields).order_by("id")[o : o + PAGE]), max(3, repeat // 2))
        page_rows = instruction_page(rows, id_range=dataset_id_range(dataset.pk), after=after, size=PAGE).rows
        assert [r.id for r in page_rows] == list(ids[offset : offset + PAGE])
        out[label] = {
            "page": page,
            "keyset_view_ms": keyset_view,
            "keyset_query_ms": keyset_sql,
            "offset_query_ms": offset_sql,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is not a folder: the bench reads its instructions from there")

    use_bench_database("retort_browser_bench")
    from django.contrib.auth import get_user_model
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections, connection
    from django.test import Client

    from apps.datasets.models import Dataset

    # A request's end closes a connection that is inside a transaction (the index-less baselines run in
    # one) or past its age; a running server keeps its connection, as the test runner does.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    # Static files by their plain names (production mode names them from collectstatic's manifest).
    from django.conf import settings

    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }

    OUT.mkdir(parents=True, exist_ok=True)
    user = get_user_model().objects.create_superuser("bench", password="bench-password-0123")
    client = Client()
    client.force_login(user)
    results = {"machine": machine(), "date": time.strftime("%Y-%m-%d"), "postgres": connection.pg_version, "sizes": []}

    offset = 0
    for n in sizes:
        path = OUT / f"browser-{n}.jsonl"
        records_file(path, n, offset)
        name = f"browse-{n}"
        entry = {"import_s": import_rows(path, name)}
        if n == sizes[0]:  # the indexes' cost: the same rows into another dataset without them
            with without_search_indexes():
                entry["import_without_search_indexes_s"] = import_rows(path, name + "-plain")
        path.unlink()
        offset += n
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE datasets_instruction")
        entry.update(measure(Dataset.objects.get(name=name), client, args.repeat))
        results["sizes"].append(entry)
        print(json.dumps(entry, indent=1), flush=True)

    (OUT / "dataset_page.json").write_text(json.dumps(results, indent=1))
    print(f"\n{results['machine']}, PostgreSQL {results['postgres']}, {results['date']}")
    print("| rows | page | categories old → kept | search rare / common / absent (index vs none) "
          "| page 500 keyset vs OFFSET | deep page keyset vs OFFSET |")  # fmt: skip
    for e in results["sizes"]:
        s = e["search"]
        search = " / ".join(
            f"{s[k]['with_index_ms']:.1f} vs {s[k]['without_index_ms']:.1f} ms" for k in ("rare", "common", "absent")
        )
        p5, deep = e["page_500"], e["deep"]
        print(
            f"| {e['rows']:,} | {e['page_ms']:.1f} ms | {e['categories_old_ms']:.1f} → {e['categories_new_ms']:.2f} ms "
            f"| {search} | {p5['keyset_query_ms']:.2f} vs {p5['offset_query_ms']:.1f} ms "
            f"| {deep['keyset_query_ms']:.2f} vs {deep['offset_query_ms']:.1f} ms (page {deep['page']:,}) |"
        )


if __name__ == "__main__":
    main()
