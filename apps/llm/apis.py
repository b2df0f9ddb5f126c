"""REST API for endpoints, the call ledger, cost roll-ups and prompt templates (under /api/v1/llm/)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.permissions import IsOperator, IsViewer
from apps.llm.models import LLMCall, LLMCallUse, LLMEndpoint
from apps.llm.serializers import CallSerializer, EndpointSerializer
from apps.llm.services import ENDPOINT_FIELDS, llm_endpoint_create, llm_endpoint_test, llm_endpoint_update
from workers.llm.prompts import TemplateError, get_template, latest_templates


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def _writable(data: dict) -> dict:
    return {k: v for k, v in data.items() if k in ENDPOINT_FIELDS}


class EndpointListApi(generics.ListCreateAPIView):
    """Endpoints, newest first, paged like every other list."""

    queryset = LLMEndpoint.objects.select_related("offline_dataset")
    serializer_class = EndpointSerializer
    pagination_class = NewestFirst

    def get_permissions(self):
        return [IsOperator()] if self.request.method == "POST" else [IsViewer()]

    def perform_create(self, serializer):
        serializer.instance = llm_endpoint_create(by=self.request.user, **_writable(serializer.validated_data))


class EndpointDetailApi(generics.RetrieveUpdateAPIView):
    queryset = LLMEndpoint.objects.all()
    serializer_class = EndpointSerializer

    def get_permissions(self):
        return [IsViewer()] if self.request.method == "GET" else [IsOperator()]

    def perform_update(self, serializer):
        serializer.instance = llm_endpoint_update(
            endpoint=self.get_object(), by=self.request.user, **_writable(serializer.validated_data)
        )


class EndpointTestApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=None, responses={200: dict})
    def post(self, request, pk: int):
        check = llm_endpoint_test(endpoint=get_object_or_404(LLMEndpoint, pk=pk))
        return Response({"ok": check.ok, "message": check.message, "latency_ms": check.latency_ms})


class CallListApi(generics.ListAPIView):
    """The ledger, newest first: each paid call once, with its uses. Filters: experiment, round, stage,
    item (through the uses), status, purpose, endpoint."""

    serializer_class = CallSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        qs = LLMCall.objects.prefetch_related("uses")
        params = self.request.query_params
        uses = {}
        for name in ("experiment", "round"):
            if params.get(name):
                uses[f"{name}_id"] = params[name]
        for name in ("stage", "item"):
            if params.get(name):
                uses[name] = params[name]
        if uses:
            qs = qs.filter(pk__in=LLMCallUse.objects.filter(**uses).values("call_id"))
        if params.get("endpoint"):
            qs = qs.filter(endpoint_id=params["endpoint"])
        for name in ("status", "purpose"):
            if params.get(name):
                qs = qs.filter(**{name: params[name]})
        return qs


class PromptListApi(APIView):
    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response([_template_json(t) for t in latest_templates()])


class PromptDetailApi(APIView):
    @extend_schema(responses={200: dict})
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
