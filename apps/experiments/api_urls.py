from django.urls import path

from apps.experiments import apis

urlpatterns = [
    path("experiments/<int:pk>/costs/", apis.ExperimentCostApi.as_view(), name="api-experiment-costs"),
]
