from django.contrib import admin

from apps.training.models import Artifact, TrainingJob


class ArtifactInline(admin.TabularInline):
    model = Artifact
    extra = 0
    readonly_fields = ["kind", "path", "sha256", "size_bytes", "created_at"]


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ["id", "round", "status", "progress", "worker", "started_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["worker", "round__experiment__name"]
    readonly_fields = [
        "celery_task_id",
        "worker",
        "progress",
        "metrics",
        "checkpoint",
        "error",
        "started_at",
        "finished_at",
    ]
    inlines = [ArtifactInline]


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "path", "size_bytes", "created_at"]
    list_filter = ["kind"]
    search_fields = ["path", "sha256"]
    readonly_fields = ["sha256", "size_bytes", "created_at"]
