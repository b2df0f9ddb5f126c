"""A paid call and its uses (step 2 of 3): each call that named an experiment becomes that experiment's
use of it, paid by it if the call had finished. One INSERT ... SELECT, so millions of calls take seconds."""

from django.db import migrations


def _tables(apps):
    call = apps.get_model("llm", "LLMCall")._meta.db_table
    use = apps.get_model("llm", "LLMCallUse")._meta.db_table
    return call, use


def copy_owners(apps, schema_editor):
    call, use = (schema_editor.quote_name(t) for t in _tables(apps))
    schema_editor.execute(
        f"INSERT INTO {use} (call_id, experiment_id, round_id, stage, item, paid, created_at) "  # noqa: S608
        f"SELECT id, experiment_id, round_id, stage, '', status <> 'pending', created_at FROM {call} "
        "WHERE experiment_id IS NOT NULL"
    )


def copy_back(apps, schema_editor):
    call, use = (schema_editor.quote_name(t) for t in _tables(apps))
    first = f"FROM {use} u WHERE u.call_id = {call}.id ORDER BY u.paid DESC, u.id LIMIT 1"
    schema_editor.execute(
        f"UPDATE {call} SET experiment_id = (SELECT u.experiment_id {first}), "  # noqa: S608
        f"round_id = (SELECT u.round_id {first}), stage = COALESCE((SELECT u.stage {first}), '')"
    )


class Migration(migrations.Migration):
    dependencies = [
        ("llm", "0003_calls_and_uses"),
    ]

    operations = [migrations.RunPython(copy_owners, copy_back)]
