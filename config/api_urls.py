"""Every REST endpoint, under /api/v1/."""

from django.urls import include, path

urlpatterns = [
    path("", include("apps.datasets.api_urls")),
    path("", include("apps.llm.api_urls")),
]
