"""The experiments app's REST resources and actions (its older endpoints, costs, evaluations and
provenance, are in api_urls.py)."""

from django.urls import path

from apps.experiments import actions_v1, apis_v1, export_apis

urlpatterns = [
    path("experiments/", actions_v1.ExperimentListCreateApi.as_view(), name="api-experiment-list"),
    path("experiments/estimate/", actions_v1.ExperimentEstimateApi.as_view(), name="api-experiment-estimate"),
    path("experiments/<int:pk>/", apis_v1.ExperimentDetailApi.as_view(), name="api-experiment-detail"),
    path("experiments/<int:pk>/start/", actions_v1.ExperimentStartApi.as_view(), name="api-experiment-start"),
    path("experiments/<int:pk>/pause/", actions_v1.ExperimentPauseApi.as_view(), name="api-experiment-pause"),
    path("experiments/<int:pk>/resume/", actions_v1.ExperimentResumeApi.as_view(), name="api-experiment-resume"),
    path("experiments/<int:pk>/cancel/", actions_v1.ExperimentCancelApi.as_view(), name="api-experiment-cancel"),
    path(
        "experiments/<int:pk>/approve-and-train/",
        actions_v1.ExperimentApproveAndTrainApi.as_view(),
        name="api-experiment-approve-and-train",
    ),
    path("rounds/", apis_v1.RoundListApi.as_view(), name="api-round-list"),
    path("rounds/<int:pk>/", apis_v1.RoundDetailApi.as_view(), name="api-round-detail"),
    path("stages/", apis_v1.StageRunListApi.as_view(), name="api-stage-run-list"),
    path("stages/<int:pk>/", apis_v1.StageRunDetailApi.as_view(), name="api-stage-run-detail"),
    path("evaluations/", apis_v1.EvaluationListApi.as_view(), name="api-evaluation-list"),
    path("evaluations/<int:pk>/", apis_v1.EvaluationDetailApi.as_view(), name="api-evaluation-detail"),
    path("exports/", export_apis.ExportListStartApi.as_view(), name="api-export-list"),
    path("exports/<int:pk>/", export_apis.ExportDetailApi.as_view(), name="api-export-detail"),
    path("exports/<int:pk>/files/<str:name>/", export_apis.ExportFileApi.as_view(), name="api-export-file"),
]
