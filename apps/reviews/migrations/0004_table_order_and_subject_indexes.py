"""Indexes the queue pages need at a million tasks (bench/review_queue.py): the table view in queue order
for a round and for every round whatever the status (without them PostgreSQL sorted all of a round's
tasks to show a page of 50: 150 ms at 50,000 tasks a round, 0.1 ms with the index), and the tasks of
the subjects a text search or a filter found, by subject id (the search read every task of the kind)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("experiments", "0007_export_job"),
        ("reviews", "0003_overlap_assignments_resolution"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="reviewtask",
            index=models.Index(fields=["round", "kind", "-priority", "id"], name="review_task_round_order"),
        ),
        migrations.AddIndex(
            model_name="reviewtask",
            index=models.Index(fields=["kind", "-priority", "id"], name="review_task_kind_order"),
        ),
        migrations.AddIndex(
            model_name="reviewtask",
            index=models.Index(fields=["subject_id", "subject_type"], name="review_task_subject"),
        ),
    ]
