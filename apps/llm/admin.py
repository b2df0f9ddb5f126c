from django.contrib import admin, messages

from apps.core.admin_mixins import WrittenByRetort
from apps.llm.models import (
    ClassifierExample,
    ClassifierVersion,
    LLMCall,
    LLMCallUse,
    LLMEndpoint,
    LLMHold,
    LLMRunnerLease,
)
from apps.llm.services import llm_endpoint_test


@admin.register(LLMEndpoint)
class LLMEndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "backend", "model", "base_url", "max_concurrency", "requests_per_minute", "api_key_env"]
    list_filter = ["backend"]
    search_fields = ["name", "model", "base_url"]
    raw_id_fields = ["offline_dataset"]
    readonly_fields = ["last_error", "last_error_at"]
    actions = ["test_connection"]

    @admin.action(description="Test connection")
    def test_connection(self, request, queryset):
        for endpoint in queryset:
            check = llm_endpoint_test(endpoint=endpoint)
            self.message_user(
                request, f"{endpoint.name}: {check.message}", messages.SUCCESS if check.ok else messages.ERROR
            )


@admin.register(LLMCall)
class LLMCallAdmin(WrittenByRetort, admin.ModelAdmin):
    list_display = [
        "id",
        "model",
        "purpose",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "latency_ms",
        "created_at",
    ]
    list_filter = ["status", "purpose", "endpoint"]
    search_fields = ["request_hash", "model"]
    readonly_fields = [f.name for f in LLMCall._meta.fields]
    show_full_result_count = False


@admin.register(LLMCallUse)
class LLMCallUseAdmin(WrittenByRetort, admin.ModelAdmin):
    list_display = ["id", "call", "experiment", "round", "stage", "item", "paid", "created_at"]
    list_filter = ["paid", "stage"]
    search_fields = ["item"]
    raw_id_fields = ["call", "experiment", "round"]
    readonly_fields = [f.name for f in LLMCallUse._meta.fields]
    show_full_result_count = False


@admin.register(LLMHold)
class LLMHoldAdmin(WrittenByRetort, admin.ModelAdmin):
    """Holds are placed and released through the experiments' pause and resume, not edited here."""

    list_display = ["experiment", "reason", "created_at", "released_at"]
    list_filter = ["released_at"]
    readonly_fields = ["experiment", "reason", "created_at", "released_at"]


@admin.register(LLMRunnerLease)
class LLMRunnerLeaseAdmin(WrittenByRetort, admin.ModelAdmin):
    list_display = ["endpoint", "owner", "expires_at"]
    readonly_fields = ["endpoint", "owner", "expires_at"]


@admin.register(ClassifierExample)
class ClassifierExampleAdmin(WrittenByRetort, admin.ModelAdmin):
    """Reviewers' task labels as the local classifier's data: written when task-label reviews are done."""

    list_display = ["id", "category", "source", "text", "experiment_id", "round_id", "reviewer", "updated_at"]
    list_filter = ["source", "category"]
    search_fields = ["text", "content_hash"]
    readonly_fields = [f.name for f in ClassifierExample._meta.fields]
    show_full_result_count = False


@admin.register(ClassifierVersion)
class ClassifierVersionAdmin(admin.ModelAdmin):
    """Retrainings of the local classifier: queued from the reviews or the endpoint page, run by a worker."""

    list_display = ["id", "status", "reason", "examples", "review_examples", "accuracy", "cv_accuracy", "created_at"]
    list_filter = ["status", "reason"]
    readonly_fields = [f.name for f in ClassifierVersion._meta.fields]

    def has_add_permission(self, request):
        return False
