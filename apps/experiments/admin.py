from django.contrib import admin

from apps.experiments.exports.models import ExportJob
from apps.experiments.models import (
    Evaluation,
    EvaluationCategory,
    Experiment,
    ExperimentDataset,
    Lineage,
    PoolMember,
    Round,
    SeedSelection,
    Snapshot,
    SnapshotItem,
    StageRun,
    TaskLabel,
)


class RoundInline(admin.TabularInline):
    model = Round
    extra = 0
    fields = ["index", "status", "params", "training_set_hash"]
    readonly_fields = ["training_set_hash"]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "recipe", "dataset", "status", "student_model", "created_at"]
    list_filter = ["recipe", "status"]
    search_fields = ["name"]
    inlines = [RoundInline]


@admin.register(Round)
class RoundAdmin(admin.ModelAdmin):
    list_display = ["experiment", "index", "status", "approved_by", "created_at"]
    list_filter = ["status"]
    search_fields = ["experiment__name"]
    readonly_fields = ["training_set_hash", "metrics", "approved_at", "finished_at"]


@admin.register(StageRun)
class StageRunAdmin(admin.ModelAdmin):
    list_display = ["round", "position", "name", "kind", "status", "phase", "done", "total", "failed", "cost"]
    list_filter = ["status", "kind"]
    readonly_fields = ["cursor", "state", "attempts", "owner", "lease_expires_at", "started_at", "finished_at"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the engine writes: browsable and searchable, changed only through the engine's services. Foreign
    keys show as ids, so a page of pool rows never loads millions of instructions into a select box."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.concrete_fields]


@admin.register(ExperimentDataset)
class ExperimentDatasetAdmin(ReadOnlyAdmin):
    list_display = ["experiment", "dataset", "role", "weight", "position"]
    list_filter = ["role"]
    search_fields = ["experiment__name", "dataset__name"]


@admin.register(PoolMember)
class PoolMemberAdmin(ReadOnlyAdmin):
    list_display = ["experiment", "pool", "instruction_id", "joined_round", "left_round"]
    list_filter = ["pool"]
    search_fields = ["experiment__name"]


@admin.register(Lineage)
class LineageAdmin(ReadOnlyAdmin):
    list_display = ["instruction_id", "experiment", "round", "origin", "seed_id", "nearest_id", "nearest_score"]
    list_filter = ["origin"]
    search_fields = ["experiment__name"]


@admin.register(TaskLabel)
class TaskLabelAdmin(ReadOnlyAdmin):
    list_display = ["experiment", "instruction_id", "category", "confidence", "source", "created_at"]
    list_filter = ["source", "category"]
    search_fields = ["experiment__name", "category"]


@admin.register(SeedSelection)
class SeedSelectionAdmin(ReadOnlyAdmin):
    list_display = ["round", "instruction_id", "mfd", "hard", "alpha"]
    list_filter = ["hard"]


@admin.register(Snapshot)
class SnapshotAdmin(ReadOnlyAdmin):
    list_display = ["round", "hash", "size", "frozen_at", "approved_by"]
    search_fields = ["hash", "round__experiment__name"]


@admin.register(SnapshotItem)
class SnapshotItemAdmin(ReadOnlyAdmin):
    list_display = ["snapshot", "position", "kind", "instruction_id"]
    list_filter = ["kind"]


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin):
    list_display = ["experiment", "round", "n", "win_rate", "ci_low", "ci_high", "lc_win_rate", "accuracy"]
    search_fields = ["experiment__name"]


@admin.register(EvaluationCategory)
class EvaluationCategoryAdmin(ReadOnlyAdmin):
    list_display = ["evaluation", "category", "n", "win_rate", "accuracy", "regressed"]
    list_filter = ["regressed"]


@admin.register(ExportJob)
class ExportJobAdmin(ReadOnlyAdmin):
    list_display = ["pk", "format", "source_label", "status", "requested_by", "created_at"]
    list_filter = ["status", "format"]
    search_fields = ["source_label"]
