from django.urls import path

from apps.training import apis

urlpatterns = [
    path("training/jobs/", apis.TrainingJobListApi.as_view(), name="api-training-job-list"),
    path("training/jobs/<int:pk>/", apis.TrainingJobDetailApi.as_view(), name="api-training-job-detail"),
    path("training/jobs/<int:pk>/metrics/", apis.TrainingMetricListApi.as_view(), name="api-training-job-metrics"),
    path("training/jobs/<int:pk>/cancel/", apis.TrainingJobCancelApi.as_view(), name="api-training-job-cancel"),
    path("training/merges/", apis.MergeJobListApi.as_view(), name="api-training-merge-list"),
    path("artifacts/", apis.ArtifactListApi.as_view(), name="api-artifact-list"),
    path("artifacts/<int:pk>/", apis.ArtifactDetailApi.as_view(), name="api-artifact-detail"),
    path("artifacts/<int:pk>/merge/", apis.ArtifactMergeApi.as_view(), name="api-artifact-merge"),
    path("artifacts/<int:pk>/download/", apis.ArtifactDownloadApi.as_view(), name="api-artifact-download"),
]
