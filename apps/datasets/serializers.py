from rest_framework import serializers

from apps.datasets.formats import FORMATS
from apps.datasets.models import Dataset, ImportJob, Instruction
from apps.datasets.selectors import import_job_progress


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "source", "license", "size", "created_at"]


class InstructionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instruction
        fields = [
            "id",
            "dataset",
            "text",
            "input",
            "reference_output",
            "gold_label",
            "task_category",
            "origin",
            "parent",
            "created_in_round",
            "content_hash",
            "metadata",
            "created_at",
        ]


class ImportJobSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    hint = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "dataset_name",
            "dataset",
            "original_filename",
            "format",
            "detected_format",
            "skip_invalid",
            "status",
            "records_read",
            "imported",
            "duplicates",
            "skipped_invalid",
            "error_count",
            "errors",
            "message",
            "blocked_by_invalid",
            "hint",
            "progress",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_progress(self, job) -> dict:
        return import_job_progress(job)

    def get_hint(self, job) -> str:
        """What to do next, in this API's own words (the page and the command line say it in theirs)."""
        if job.blocked_by_invalid:
            return "Send the file again with skip_invalid=true to import the valid records and skip the invalid ones."
        return ""


class ImportCreateSerializer(serializers.Serializer):
    file = serializers.FileField()
    dataset = serializers.CharField(max_length=200)
    format = serializers.ChoiceField(choices=["auto", *FORMATS], default="auto")
    skip_invalid = serializers.BooleanField(default=False)
    license = serializers.CharField(
        max_length=200, required=False, default="", allow_blank=True, help_text="The data's licence, e.g. CC-BY-4.0."
    )
