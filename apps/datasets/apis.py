from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.permissions import IsOperator
from apps.datasets.models import Dataset, ImportJob, Instruction
from apps.datasets.serializers import (
    DatasetSerializer,
    ImportCreateSerializer,
    ImportJobSerializer,
    InstructionSerializer,
)
from apps.datasets.services import import_job_create


class ByIdCursor(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class NewestFirstCursor(ByIdCursor):
    ordering = "-id"


class DatasetListApi(generics.ListAPIView):
    queryset = Dataset.objects.all()
    serializer_class = DatasetSerializer
    pagination_class = ByIdCursor


class DatasetDetailApi(generics.RetrieveAPIView):
    queryset = Dataset.objects.all()
    serializer_class = DatasetSerializer


class InstructionListApi(generics.ListAPIView):
    serializer_class = InstructionSerializer
    pagination_class = ByIdCursor

    def get_queryset(self):
        dataset = get_object_or_404(Dataset, pk=self.kwargs["pk"])
        qs = Instruction.objects.filter(dataset=dataset)
        if category := self.request.query_params.get("category"):
            qs = qs.filter(task_category=category)
        return qs


class ImportCreateApi(APIView):
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
            user=request.user,
        )
        body = ImportJobSerializer(job).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/v1/imports/{job.pk}/"})


class ImportListApi(generics.ListAPIView):
    """Newest first, as on the import page."""

    queryset = ImportJob.objects.all()
    serializer_class = ImportJobSerializer
    pagination_class = NewestFirstCursor


class ImportDetailApi(generics.RetrieveAPIView):
    queryset = ImportJob.objects.all()
    serializer_class = ImportJobSerializer
