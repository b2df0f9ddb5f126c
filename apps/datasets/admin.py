from django.contrib import admin

from apps.datasets.models import Dataset, ImportJob, Instruction


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "size", "license", "created_by", "created_at"]
    search_fields = ["name", "description", "source"]
    readonly_fields = ["size", "created_at", "updated_at"]


@admin.register(Instruction)
class InstructionAdmin(admin.ModelAdmin):
    list_display = ["id", "short_text", "dataset", "task_category", "origin", "created_at"]
    list_filter = ["origin", "task_category", "dataset"]
    search_fields = ["text", "content_hash"]
    list_select_related = ["dataset"]
    raw_id_fields = ["parent", "created_in_round"]
    readonly_fields = ["content_hash", "created_at"]
    show_full_result_count = False  # counting millions of rows on every page is slow

    @admin.display(description="text")
    def short_text(self, obj):
        return obj.text[:100]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "dataset_name",
        "detected_format",
        "status",
        "imported",
        "duplicates",
        "error_count",
        "created_at",
    ]
    list_filter = ["status", "detected_format"]
    search_fields = ["dataset_name", "original_filename"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]
