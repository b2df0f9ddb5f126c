from django.contrib import admin

from apps.llm.models import LLMCall, LLMEndpoint


@admin.register(LLMEndpoint)
class LLMEndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "backend", "model", "base_url", "max_concurrency", "requests_per_minute",
                    "api_key_env"]
    list_filter = ["backend"]
    search_fields = ["name", "model", "base_url"]


@admin.register(LLMCall)
class LLMCallAdmin(admin.ModelAdmin):
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
