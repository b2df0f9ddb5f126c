"""Per-dataset task category counts (DatasetCategoryCount), counted once here from the rows that exist;
from then on every writer of task_category keeps them (apps/datasets/categories.py)."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count


def count_existing(apps, schema_editor):
    Instruction = apps.get_model("datasets", "Instruction")
    DatasetCategoryCount = apps.get_model("datasets", "DatasetCategoryCount")
    rows = (
        Instruction.objects.exclude(task_category="")
        .order_by()
        .values_list("dataset_id", "task_category")
        .annotate(n=Count("id"))
    )
    DatasetCategoryCount.objects.bulk_create(
        [DatasetCategoryCount(dataset_id=d, category=c, count=n) for d, c, n in rows], batch_size=1000
    )


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0008_import_job_license"),
    ]

    operations = [
        migrations.CreateModel(
            name="DatasetCategoryCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("category", models.CharField(max_length=64)),
                ("count", models.PositiveBigIntegerField(default=0)),
                (
                    "dataset",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="category_counts",
                        to="datasets.dataset",
                    ),
                ),
            ],
            options={
                "ordering": ["dataset", "category"],
                "constraints": [
                    models.UniqueConstraint(fields=("dataset", "category"), name="category_count_once_per_dataset"),
                    models.CheckConstraint(
                        condition=models.Q(("category", ""), _negated=True), name="category_count_not_blank"
                    ),
                ],
            },
        ),
        migrations.RunPython(count_existing, migrations.RunPython.noop),
    ]
