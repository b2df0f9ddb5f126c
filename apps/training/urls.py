from django.urls import path

from apps.training import views

app_name = "training"
urlpatterns = [
    path("artifacts/", views.artifact_index, name="artifacts"),
    path("artifacts/<int:pk>/download/", views.artifact_download, name="artifact-download"),
    path("artifacts/<int:pk>/merge/", views.artifact_merge_view, name="artifact-merge"),
    path("jobs/", views.job_index, name="jobs"),
    path("jobs/<int:pk>/", views.job_detail, name="job"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job-cancel"),
]
