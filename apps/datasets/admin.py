from collections import Counter

from django.contrib import admin
from django.db import transaction
from django.db.models import Count, F

from apps.datasets.categories import category_counts_add, instruction_category_set
from apps.datasets.models import Dataset, DatasetCategoryCount, ImportJob, Instruction


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

    def get_readonly_fields(self, request, obj=None):
        # Moving a row to another dataset would need both datasets' counts: not offered.
        return [*self.readonly_fields, "dataset"] if obj is not None else self.readonly_fields

    # Edits and deletions keep the dataset's size and category counts, as the services do.
    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            category = obj.task_category
            if change and "task_category" in form.changed_data:
                obj.task_category = form.initial.get("task_category", "")
            super().save_model(request, obj, form, change)
            if not change:
                Dataset.objects.filter(pk=obj.dataset_id).update(size=F("size") + 1)
                category_counts_add(dataset_id=obj.dataset_id, deltas={obj.task_category: 1})
            elif category != obj.task_category:
                instruction_category_set(instruction_ids=[obj.pk], category=category)
                obj.task_category = category

    def delete_model(self, request, obj):
        self.delete_queryset(request, Instruction.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            rows = list(queryset.order_by().values_list("dataset_id", "task_category").annotate(n=Count("id")))
            super().delete_queryset(request, queryset)
            removed: dict[int, Counter] = {}
            for dataset_id, category, n in rows:
                removed.setdefault(dataset_id, Counter())[category] += n
            for dataset_id, gone in sorted(removed.items()):
                Dataset.objects.filter(pk=dataset_id).update(size=F("size") - gone.total())
                category_counts_add(dataset_id=dataset_id, deltas={c: -n for c, n in gone.items()})


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


@admin.register(DatasetCategoryCount)
class DatasetCategoryCountAdmin(admin.ModelAdmin):
    """Read-only: the counts are kept by every writer of task_category, so an edit here would make them lie."""

    list_display = ["dataset", "category", "count"]
    search_fields = ["dataset__name", "category"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
