from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import DetailApi, NewestCursor
from apps.core.permissions import IsOperator
from apps.datasets.models import ImportJob
from apps.datasets.serializers import ImportCreateSerializer, ImportJobSerializer
from apps.datasets.services import import_job_create


class ImportCreateApi(APIView):
    """Import a file into a dataset (operators), read as a stream by a worker: 202 with the job, which
    GET /api/v1/imports/<id>/ follows. All or nothing unless skip_invalid; duplicates are skipped."""

    permission_classes = [IsOperator]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request=ImportCreateSerializer, responses={202: ImportJobSerializer})
    def post(self, request):
        params = ImportCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        job = import_job_create(
            uploaded_file=data["file"],
            dataset_name=data["dataset"],
            fmt=data["format"],
            skip_invalid=data["skip_invalid"],
            license=data["license"],
            user=request.user,
        )
        body = ImportJobSerializer(job).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/v1/imports/{job.pk}/"})


class ImportListApi(generics.ListAPIView):
    """Newest first, as on the import page."""

    queryset = ImportJob.objects.all()
    serializer_class = ImportJobSerializer
    pagination_class = NewestCursor


class ImportDetailApi(DetailApi):
    queryset = ImportJob.objects.all()
    serializer_class = ImportJobSerializer
    object_label = "import"
