"""Every REST endpoint, under /api/v1/, and the root listing that names them."""

from django.urls import URLPattern, URLResolver, include, path, reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

resource_patterns = [
    path("", include("apps.datasets.api_urls")),
    path("", include("apps.llm.api_urls")),
    path("", include("apps.experiments.api_urls")),
    path("", include("apps.experiments.api_urls_v1")),
    path("", include("apps.judging.api_urls")),
    path("", include("apps.training.api_urls")),
    path("", include("apps.console.api_urls")),
]


def _collections(patterns, prefix: str = ""):
    """(url name, route) of every endpoint reachable without an id: the places a client starts from."""
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _collections(entry.url_patterns, route)
        elif isinstance(entry, URLPattern) and entry.name and "<" not in route:
            yield entry.name, route


class ApiRootSerializer(serializers.Serializer):
    resources = serializers.DictField(child=serializers.URLField(), help_text="Each collection's URL, by path.")
    schema = serializers.URLField()
    docs = serializers.URLField()


class ApiRoot(APIView):
    """The API's resources, with links to the schema and its browsable docs. Needs the viewer role, like
    every other endpoint (the default permission class)."""

    @extend_schema(responses={200: ApiRootSerializer})
    def get(self, request):
        resources = {
            route.rstrip("/"): request.build_absolute_uri(reverse(name))
            for name, route in _collections(resource_patterns)
        }
        return Response(
            {
                "resources": resources,
                "schema": request.build_absolute_uri(reverse("api-schema")),
                "docs": request.build_absolute_uri(reverse("api-docs")),
            }
        )


urlpatterns = [
    path("", ApiRoot.as_view(), name="api-root"),
    *resource_patterns,
]
