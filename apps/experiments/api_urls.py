from django.urls import path

from apps.experiments import apis

urlpatterns = [
    path("experiments/<int:pk>/costs/", apis.ExperimentCostApi.as_view(), name="api-experiment-costs"),
    path(
        "experiments/<int:pk>/evaluations/",
        apis.ExperimentEvaluationsApi.as_view(),
        name="api-experiment-evaluations",
    ),
    path(
        "instructions/<int:pk>/provenance/",
        apis.InstructionProvenanceApi.as_view(),
        name="api-instruction-provenance",
    ),
]
