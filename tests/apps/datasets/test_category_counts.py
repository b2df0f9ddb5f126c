"""Per-dataset category counts stay equal to the rows' categories: after imports (with duplicates, into
an existing dataset, rolled back), after a change of category, and after admin edits and deletions."""

import json
from collections import Counter

import pytest
from django.urls import reverse

from apps.core.errors import RetortError
from apps.datasets.categories import category_counts_add, dataset_category_counts_rebuild, instruction_category_set
from apps.datasets.importing import ImportFailed, dataset_import_file
from apps.datasets.models import Dataset, DatasetCategoryCount, Instruction
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _counts(dataset_id) -> dict[str, int]:
    return dict(DatasetCategoryCount.objects.filter(dataset_id=dataset_id).values_list("category", "count"))


def _truth(dataset_id) -> dict[str, int]:
    rows = Instruction.objects.filter(dataset_id=dataset_id).exclude(task_category="")
    return dict(Counter(rows.values_list("task_category", flat=True)))


def test_an_import_counts_the_categories_it_stores_and_not_its_duplicates(tmp_path):
    first = [{"instruction": f"Question {k}?", "category": ["math", "coding", ""][k % 3]} for k in range(30)]
    first += [{"instruction": "Question 4?", "category": "math"}]  # a duplicate within the file
    report = dataset_import_file(path=_write(tmp_path / "a.jsonl", first), dataset_name="counted")
    assert report.imported == 30 and report.duplicates == 1
    dataset = Dataset.objects.get(name="counted")
    assert _counts(dataset.pk) == {"math": 10, "coding": 10} == _truth(dataset.pk)

    # Into the same dataset: ten rows it already holds (duplicates, not counted) and ten new ones.
    second = [{"instruction": f"Question {k}?", "category": "writing"} for k in range(20, 40)]
    report = dataset_import_file(path=_write(tmp_path / "b.jsonl", second), dataset_name="counted")
    assert report.imported == 10 and report.duplicates == 10
    assert _counts(dataset.pk) == {"math": 10, "coding": 10, "writing": 10} == _truth(dataset.pk)


def test_a_rolled_back_import_leaves_the_counts_as_they_were(tmp_path):
    dataset_import_file(
        path=_write(tmp_path / "a.jsonl", [{"instruction": "One?", "category": "math"}]), dataset_name="rb"
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"instruction": "Two?", "category": "math"}) + "\n{not json\n")
    with pytest.raises(ImportFailed):
        dataset_import_file(path=bad, dataset_name="rb")
    dataset = Dataset.objects.get(name="rb")
    assert _counts(dataset.pk) == {"math": 1} == _truth(dataset.pk)


def test_a_change_of_category_moves_the_counts_across_datasets(tmp_path):
    for name in ("left", "right"):
        records = [{"instruction": f"{name} {k}", "category": "math" if k < 4 else ""} for k in range(6)]
        dataset_import_file(path=_write(tmp_path / f"{name}.jsonl", records), dataset_name=name)
    left, right = Dataset.objects.get(name="left"), Dataset.objects.get(name="right")
    ids = [
        *Instruction.objects.filter(dataset=left).order_by("pk").values_list("pk", flat=True)[:5],
        *Instruction.objects.filter(dataset=right).order_by("pk").values_list("pk", flat=True)[4:],
    ]
    assert instruction_category_set(instruction_ids=ids, category="reasoning") == 7
    assert _counts(left.pk) == {"reasoning": 5} == _truth(left.pk)  # 4 math + 1 blank moved; math emptied
    assert _counts(right.pk) == {"math": 4, "reasoning": 2} == _truth(right.pk)

    # only_blank fills only rows that have none; setting the same category again changes nothing.
    everything = list(Instruction.objects.filter(dataset=left).values_list("pk", flat=True))
    assert instruction_category_set(instruction_ids=everything, category="writing", only_blank=True) == 1
    assert instruction_category_set(instruction_ids=everything[:1], category="reasoning") == 0
    assert _counts(left.pk) == {"reasoning": 5, "writing": 1} == _truth(left.pk)

    # Clearing a category: the blank is not counted.
    instruction_category_set(instruction_ids=everything, category="")
    assert _counts(left.pk) == {} == _truth(left.pk)


def test_bad_writes_are_refused_with_the_reason():
    with pytest.raises(RetortError, match="over the 64-character limit"):
        instruction_category_set(instruction_ids=[1], category="x" * 65)
    dataset = Dataset.objects.create(name="tiny")
    with pytest.raises(RetortError, match="'math' would fall to -1"):
        category_counts_add(dataset_id=dataset.pk, deltas={"math": -1})


def test_rebuild_recounts_rows_written_around_the_services():
    dataset = Dataset.objects.create(name="raw")
    Instruction.objects.bulk_create(
        [Instruction(dataset=dataset, text=f"t{k}", content_hash=f"h{k}", task_category="qa") for k in range(3)]
    )
    assert _counts(dataset.pk) == {}
    assert dataset_category_counts_rebuild(dataset_id=dataset.pk) == {"qa": 3} == _counts(dataset.pk)


def test_admin_edits_and_deletions_keep_size_and_counts(client, tmp_path):
    records = [{"instruction": f"Admin {k}", "category": "math"} for k in range(4)]
    dataset_import_file(path=_write(tmp_path / "a.jsonl", records), dataset_name="admin-set")
    dataset = Dataset.objects.get(name="admin-set")
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    first, second, *_ = Instruction.objects.filter(dataset=dataset).order_by("pk")
    url = reverse("admin:datasets_instruction_change", args=[first.pk])
    form = {
        "text": first.text, "input": "", "reference_output": "", "gold_label": "", "task_category": "coding",
        "origin": "imported", "metadata": "{}",
    }  # fmt: skip
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Instruction.objects.get(pk=first.pk).task_category == "coding"
    assert _counts(dataset.pk) == {"math": 3, "coding": 1} == _truth(dataset.pk)

    response = client.post(reverse("admin:datasets_instruction_delete", args=[second.pk]), {"post": "yes"})
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert dataset.size == 3 and _counts(dataset.pk) == {"math": 2, "coding": 1} == _truth(dataset.pk)
