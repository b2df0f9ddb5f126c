from django.contrib import admin

from apps.core.admin_mixins import WrittenByRetort
from apps.training.models import Artifact, GenerationItem, GenerationJob, MergeJob, TrainingJob, TrainingMetric

# Jobs change state only through the services and the gpu task: the admin shows them read-only.
_JOB_FIELDS = [
    "status",
    "base_model",
    "attempts",
    "heartbeat_at",
    "worker",
    "exit_code",
    "output_dir",
    "log_path",
    "cancel_requested",
    "error",
    "started_at",
    "finished_at",
]


class ArtifactInline(admin.TabularInline):
    model = Artifact
    extra = 0
    readonly_fields = ["kind", "path", "sha256", "size_bytes", "created_at"]
    fields = readonly_fields
    can_delete = False


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ["id", "round", "status", "steps", "attempts", "worker", "started_at", "finished_at"]
    list_filter = ["status"]
    search_fields = ["worker", "round__experiment__name"]
    readonly_fields = [*_JOB_FIELDS, "steps", "metrics_offset", "spec"]
    inlines = [ArtifactInline]


@admin.register(GenerationJob)
class GenerationJobAdmin(admin.ModelAdmin):
    list_display = ["id", "round", "status", "prompts_count", "done_count", "attempts", "finished_at"]
    list_filter = ["status"]
    readonly_fields = [*_JOB_FIELDS, "prompts_count", "done_count", "input_path", "output_path", "params"]


@admin.register(MergeJob)
class MergeJobAdmin(WrittenByRetort, admin.ModelAdmin):
    list_display = ["id", "adapter", "status", "merged", "attempts", "worker", "finished_at"]
    list_filter = ["status"]
    raw_id_fields = ["adapter", "merged"]
    readonly_fields = [*_JOB_FIELDS, "adapter", "merged"]


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "base_model", "sha256", "size_bytes", "created_at"]
    list_filter = ["kind"]
    search_fields = ["path", "sha256", "base_model"]
    readonly_fields = ["sha256", "size_bytes", "snapshot_hash", "source", "spec", "metadata", "created_at"]


@admin.register(TrainingMetric)
class TrainingMetricAdmin(WrittenByRetort, admin.ModelAdmin):
    list_display = ["job", "step", "name", "value"]
    list_filter = ["name"]
    raw_id_fields = ["job"]
    readonly_fields = ["job", "step", "name", "value"]


@admin.register(GenerationItem)
class GenerationItemAdmin(WrittenByRetort, admin.ModelAdmin):
    list_display = ["job", "key", "tokens"]
    search_fields = ["key"]
    raw_id_fields = ["job"]
    readonly_fields = ["job", "key", "prompt", "text", "tokens"]
