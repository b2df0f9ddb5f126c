"""A URL conf without any review queue page."""

from django.urls import include, path

urlpatterns = [path("", include("apps.console.urls"))]
