"""Every round's tasks of one status, in queue order (bench/review_queue.py at a million tasks): the queue
pages count each status up to a cap, and across all rounds a status with few tasks (claimed, conflict)
was counted by a parallel scan of every task, 75-80 ms each; with this index each count is an index
range, under a millisecond. It also serves a table filtered by status over every round."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reviews", "0004_table_order_and_subject_indexes")]

    operations = [
        migrations.AddIndex(
            model_name="reviewtask",
            index=models.Index(fields=["kind", "status", "-priority", "id"], name="review_task_kind_status"),
        ),
    ]
