from django.contrib import admin

from apps.judging.models import Judgment, Response


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["id", "instruction_id", "role", "model", "style", "round", "cost", "created_at"]
    list_filter = ["role", "style"]
    search_fields = ["text", "model", "request_hash"]
    raw_id_fields = ["instruction", "round", "rewrites", "llm_call"]
    readonly_fields = ["request_hash", "prompt_tokens", "completion_tokens", "cost", "created_at"]
    show_full_result_count = False


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["id", "instruction_id", "round", "verdict", "contested", "teacher_score", "student_score", "gap"]
    list_filter = ["verdict", "contested"]
    search_fields = ["judge_model", "instruction__text"]
    raw_id_fields = ["instruction", "round", "teacher_response", "student_response"]
    readonly_fields = ["raw_teacher_first", "raw_student_first", "created_at"]
    show_full_result_count = False
