from django.contrib import admin

from apps.reviews.models import ReviewTask, ReviewVerdict


class ReviewVerdictInline(admin.TabularInline):
    model = ReviewVerdict
    extra = 0
    can_delete = False
    readonly_fields = ["reviewer", "decision", "edited_text", "note", "created_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ReviewTask)
class ReviewTaskAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "priority", "round", "claimed_by", "lease_expires_at"]
    list_filter = ["kind", "status"]
    search_fields = ["id"]
    raw_id_fields = ["round", "claimed_by"]
    inlines = [ReviewVerdictInline]


@admin.register(ReviewVerdict)
class ReviewVerdictAdmin(admin.ModelAdmin):
    """Read-only: verdicts are append-only and made in the review queues."""

    list_display = ["id", "task", "reviewer", "decision", "created_at"]
    list_filter = ["decision"]
    search_fields = ["note", "edited_text"]
    readonly_fields = ["task", "reviewer", "decision", "edited_text", "note", "created_at"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
