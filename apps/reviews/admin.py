from django.contrib import admin

from apps.reviews.models import ReviewAssignment, ReviewDraft, ReviewTask, ReviewVerdict


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReviewAssignmentInline(ReadOnlyInline):
    model = ReviewAssignment
    fields = readonly_fields = ["reviewer", "status", "lease_expires_at", "verdict", "submitted_at", "created_at"]


class ReviewVerdictInline(ReadOnlyInline):
    model = ReviewVerdict
    fields = readonly_fields = ["reviewer", "decision", "edited_text", "note", "created_at"]


@admin.register(ReviewTask)
class ReviewTaskAdmin(admin.ModelAdmin):
    """Votes, claims and resolutions go through apps.reviews.services; only the priority is edited here."""

    list_display = ["id", "kind", "status", "required_reviews", "decision", "priority", "round", "resolved_by"]
    list_filter = ["kind", "status", "decision"]
    search_fields = ["id"]
    raw_id_fields = ["round"]
    readonly_fields = [
        "kind", "round", "subject_type", "subject_id", "status", "required_reviews", "decision", "edited_text",
        "note", "resolved_at", "resolved_by", "created_at", "updated_at",
    ]  # fmt: skip
    inlines = [ReviewAssignmentInline, ReviewVerdictInline]

    def has_add_permission(self, request):
        return False


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


@admin.register(ReviewAssignment)
class ReviewAssignmentAdmin(admin.ModelAdmin):
    """Read-only: claims and votes are made in the review queues."""

    list_display = ["id", "task", "reviewer", "status", "lease_expires_at", "submitted_at"]
    list_filter = ["status"]
    raw_id_fields = ["task", "reviewer", "verdict"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReviewDraft)
class ReviewDraftAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "reviewer", "decision", "updated_at"]
    raw_id_fields = ["task", "reviewer"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
