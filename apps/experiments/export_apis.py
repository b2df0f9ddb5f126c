"""REST API of exports (under /api/v1/exports/): the jobs, starting one (viewers: everyone may export) and
downloading a file a finished job wrote. The export service checks the role and the request."""

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import DetailApi, FilterSerializer, ListApi, NewestCursor, get_or_404
from apps.experiments.exports.models import FORMAT_CHOICES, ExportJob
from apps.experiments.exports.selectors import export_file_path
from apps.experiments.exports.services import export_start
from apps.experiments.serializers_v1 import ExportJobSerializer, ExportStartSerializer


class ExportFilters(FilterSerializer):
    status = serializers.ChoiceField(required=False, choices=ExportJob.Status.choices)
    format = serializers.ChoiceField(required=False, choices=FORMAT_CHOICES)
    dataset = serializers.IntegerField(required=False, min_value=1, help_text="A dataset's id.")
    round = serializers.IntegerField(required=False, min_value=1, help_text="A round's id.")


class ExportListStartApi(ListApi):
    """GET: export jobs, newest first. POST: start one; a worker writes it, and the job's `files` list what
    GET /exports/<id>/files/<name>/ downloads once it has succeeded."""

    serializer_class = ExportJobSerializer
    pagination_class = NewestCursor
    filter_serializer_class = ExportFilters
    filter_lookups = {"dataset": "dataset_id", "round": "round_id"}
    queryset = ExportJob.objects.all()

    @extend_schema(request=ExportStartSerializer, responses={202: ExportJobSerializer})
    def post(self, request):
        params = ExportStartSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = dict(params.validated_data)
        round_index = data.pop("round", None)
        job = export_start(
            by=request.user,
            fmt=data.pop("format"),
            round_index=round_index,
            **{key: value for key, value in data.items() if value is not None},
        )
        return Response(
            ExportJobSerializer(job).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/v1/exports/{job.pk}/"},
        )


class ExportDetailApi(DetailApi):
    serializer_class = ExportJobSerializer
    queryset = ExportJob.objects.all()
    object_label = "export"


class ExportFileApi(APIView):
    """One file of a finished export (a name from its `files`), streamed from disk."""

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY, description="The file.")}
    )
    def get(self, request, pk: int, name: str):
        job = get_or_404(ExportJob, pk, "export")
        path = export_file_path(job, name)
        if path is None:
            listed = ", ".join(f["name"] for f in job.files) or "none yet"
            raise NotFound(f"Export #{pk} has no file {name[:200]!r} ({job.status}; its files: {listed}).")
        return FileResponse(open(path, "rb"), as_attachment=True, filename=f"export-{job.pk}-{path.name}")
