"""A paid call and its uses (step 1 of 3): the use and hold tables, the endpoint's checkpoint, verbose
names. 0004 copies each call's experiment, round and stage into a use; 0005 drops those columns.
(Three migrations: PostgreSQL refuses to alter a table in the transaction that just filled a table
referencing it.)"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0002_initial"),
        ("llm", "0002_gateway"),
    ]

    operations = [
        migrations.CreateModel(
            name="LLMCallUse",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("stage", models.CharField(blank=True, max_length=32)),
                (
                    "item",
                    models.CharField(
                        blank=True,
                        help_text="The stage's own stable key for what the call answers, e.g. instruction:123:teacher. Include the round in it when each round must count the item anew.",
                        max_length=200,
                    ),
                ),
                (
                    "paid",
                    models.BooleanField(default=False, help_text="This use's experiment was charged for the call."),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "verbose_name": "LLM call use",
                "verbose_name_plural": "LLM call uses",
            },
        ),
        migrations.CreateModel(
            name="LLMHold",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("reason", models.TextField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("released_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "LLM hold",
                "verbose_name_plural": "LLM holds",
            },
        ),
        migrations.AlterModelOptions(
            name="llmcall",
            options={"ordering": ["-id"], "verbose_name": "LLM call", "verbose_name_plural": "LLM calls"},
        ),
        migrations.AlterModelOptions(
            name="llmendpoint",
            options={"ordering": ["name"], "verbose_name": "LLM endpoint", "verbose_name_plural": "LLM endpoints"},
        ),
        migrations.AddField(
            model_name="llmendpoint",
            name="checkpoint",
            field=models.CharField(
                blank=True,
                help_text="For a student model served by this endpoint: the checkpoint it serves (an adapter's path or hash, a training artifact). It is part of the cache key, so two servers with one model name but different weights never share answers. Leave blank for a provider's API.",
                max_length=500,
            ),
        ),
        migrations.AddField(
            model_name="llmcalluse",
            name="call",
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="uses", to="llm.llmcall"),
        ),
        migrations.AddField(
            model_name="llmcalluse",
            name="experiment",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="llm_uses", to="experiments.experiment"
            ),
        ),
        migrations.AddField(
            model_name="llmcalluse",
            name="round",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="llm_uses",
                to="experiments.round",
            ),
        ),
        migrations.AddField(
            model_name="llmhold",
            name="experiment",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="llm_holds", to="experiments.experiment"
            ),
        ),
        migrations.AddIndex(
            model_name="llmcalluse",
            index=models.Index(fields=["experiment", "round", "stage"], name="llmcalluse_experiment"),
        ),
        migrations.AddIndex(
            model_name="llmcalluse",
            index=models.Index(fields=["round", "stage"], name="llmcalluse_round_stage"),
        ),
        migrations.AddConstraint(
            model_name="llmcalluse",
            constraint=models.UniqueConstraint(fields=("call", "experiment", "item"), name="llmcalluse_once_per_item"),
        ),
        migrations.AddConstraint(
            model_name="llmcalluse",
            constraint=models.UniqueConstraint(
                condition=models.Q(("paid", True)), fields=("call",), name="llmcalluse_one_payer"
            ),
        ),
        migrations.AddConstraint(
            model_name="llmhold",
            constraint=models.UniqueConstraint(
                condition=models.Q(("released_at__isnull", True)), fields=("experiment",), name="llmhold_one_active"
            ),
        ),
    ]
