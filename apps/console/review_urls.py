"""The review queues under /review/ (namespace "reviews")."""

from django.urls import path

from apps.console import review_actions, review_views

app_name = "reviews"

urlpatterns = [
    path("", review_views.overview, name="overview"),
    path("<slug:kind>/", review_views.queue, name="queue"),
    path("<slug:kind>/table/", review_views.table, name="table"),
    path("<slug:kind>/bulk/", review_actions.bulk, name="bulk"),
    path("<slug:kind>/<int:pk>/", review_views.task_detail, name="task"),
    path("<slug:kind>/<int:pk>/decide/", review_actions.decide, name="decide"),
    path("<slug:kind>/<int:pk>/resolve/", review_actions.resolve, name="resolve"),
    path("<slug:kind>/<int:pk>/skip/", review_actions.skip, name="skip"),
    path("<slug:kind>/<int:pk>/release/", review_actions.release, name="release"),
    path("<slug:kind>/<int:pk>/draft/", review_actions.draft_save, name="draft"),
    path("<slug:kind>/<int:pk>/draft/discard/", review_actions.draft_discard, name="draft-discard"),
]
