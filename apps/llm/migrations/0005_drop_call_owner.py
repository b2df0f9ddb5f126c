"""A paid call and its uses (step 3 of 3): a call no longer names the experiment that asked first."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("llm", "0004_copy_owners_to_uses"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="llmcall",
            name="llmcall_experiment_stage",
        ),
        migrations.RemoveIndex(
            model_name="llmcall",
            name="llmcall_round_stage",
        ),
        migrations.RemoveField(
            model_name="llmcall",
            name="experiment",
        ),
        migrations.RemoveField(
            model_name="llmcall",
            name="round",
        ),
        migrations.RemoveField(
            model_name="llmcall",
            name="stage",
        ),
    ]
