"""Text search that stays fast at millions of instructions, on PostgreSQL: a full-text GIN index over
to_tsvector('simple', text || ' ' || input), the expression apps.datasets.selectors.instruction_search
filters on, so a search is answered from the index instead of reading every row.

Full text rather than pg_trgm trigrams: on the browser benchmark's rows (real instructions, about 150
characters) the trigram indexes made a 100,000-row insert about 2.3 times slower again than this one,
for substring matches the browser does not need (it matches words by their beginning; see the selector).

PostgreSQL only; SQLite (the embedded mode) runs the same search without an index, correct if slower.
The index is kept out of the models' state (SQLite cannot build it), so makemigrations never sees it.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import migrations

# Must stay the expression of apps.datasets.selectors.SEARCH_VECTOR, or PostgreSQL cannot use it.
SEARCH_INDEX = GinIndex(SearchVector("text", "input", config="simple"), name="instruction_search")


def add_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.add_index(apps.get_model("datasets", "Instruction"), SEARCH_INDEX)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.remove_index(apps.get_model("datasets", "Instruction"), SEARCH_INDEX)


class Migration(migrations.Migration):
    dependencies = [("datasets", "0009_dataset_category_counts")]
    operations = [migrations.RunPython(add_index, drop_index)]
