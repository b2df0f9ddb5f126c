"""REST API for endpoints and prompt templates (under /api/v1/llm/); the call ledger and cost roll-ups are
in apis_v1."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import NamedNotFoundMixin, NewestCursor, get_or_404
from apps.core.permissions import IsOperator, IsViewer
from apps.llm.models import LLMEndpoint
from apps.llm.serializers import (
    EndpointCheckSerializer,
    EndpointSerializer,
    TemplateDetailSerializer,
    TemplateSerializer,
)
from apps.llm.services import ENDPOINT_FIELDS, llm_endpoint_create, llm_endpoint_test, llm_endpoint_update
from workers.llm.prompts import TemplateError, get_template, latest_templates


def _writable(data: dict) -> dict:
    return {k: v for k, v in data.items() if k in ENDPOINT_FIELDS}


class EndpointListApi(generics.ListCreateAPIView):
    """Endpoints, newest first, paged like every other list."""

    queryset = LLMEndpoint.objects.select_related("offline_dataset")
    serializer_class = EndpointSerializer
    pagination_class = NewestCursor

    def get_permissions(self):
        return [IsOperator()] if self.request.method == "POST" else [IsViewer()]

    def perform_create(self, serializer):
        serializer.instance = llm_endpoint_create(by=self.request.user, **_writable(serializer.validated_data))


class EndpointDetailApi(NamedNotFoundMixin, generics.RetrieveUpdateAPIView):
    queryset = LLMEndpoint.objects.all()
    serializer_class = EndpointSerializer
    object_label = "endpoint"

    def get_permissions(self):
        return [IsViewer()] if self.request.method == "GET" else [IsOperator()]

    def perform_update(self, serializer):
        serializer.instance = llm_endpoint_update(
            endpoint=self.get_object(), by=self.request.user, **_writable(serializer.validated_data)
        )


class EndpointTestApi(APIView):
    """Send the endpoint one small request (operators): whether it answered, what, and how fast."""

    permission_classes = [IsOperator]

    @extend_schema(request=None, responses={200: EndpointCheckSerializer})
    def post(self, request, pk: int):
        check = llm_endpoint_test(endpoint=get_or_404(LLMEndpoint, pk, "endpoint"))
        return Response({"ok": check.ok, "message": check.message, "latency_ms": check.latency_ms})


class PromptListApi(APIView):
    """The newest version of every prompt template."""

    @extend_schema(responses={200: TemplateSerializer(many=True)})
    def get(self, request):
        return Response([_template_json(t) for t in latest_templates()])


class PromptDetailApi(APIView):
    """One version of a template, with its system and user text and examples."""

    @extend_schema(responses={200: TemplateDetailSerializer})
    def get(self, request, template_id: str, version: int):
        try:
            return Response(_template_json(get_template(template_id, version), full=True))
        except TemplateError as exc:
            raise NotFound(str(exc)) from None


def _template_json(template, full: bool = False) -> dict:
    data = {
        "id": template.id,
        "version": template.version,
        "purpose": template.purpose,
        "contract": template.contract,
        "title": template.title,
        "description": template.description,
        "variables": list(template.variables),
    }
    if full:
        data.update(system=template.system, user=template.user, examples=template.examples)
    return data
