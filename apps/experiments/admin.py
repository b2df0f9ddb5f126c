from django.contrib import admin

from apps.experiments.models import Experiment, Round, StageRun


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
