"""REST API of training (under /api/v1/training/): jobs with their metrics, artifacts, merges; cancelling a
job, merging an adapter into its base and downloading an artifact as a zip. The services check the roles
too (apps.training.services)."""

from pathlib import Path

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import DetailApi, FilterSerializer, ListApi, NewestCursor, get_or_404
from apps.core.permissions import IsOperator
from apps.training.models import Artifact, JobStatus, MergeJob, TrainingJob, TrainingMetric
from apps.training.packaging import artifact_zip_stream, zip_name
from apps.training.serializers import (
    ArtifactSerializer,
    MergeJobSerializer,
    TrainingJobDetailSerializer,
    TrainingJobSerializer,
    TrainingMetricSerializer,
)
from apps.training.services import artifact_merge, training_job_cancel


class JobFilters(FilterSerializer):
    round = serializers.IntegerField(required=False, min_value=1, help_text="A round's id.")
    experiment = serializers.IntegerField(required=False, min_value=1, help_text="An experiment's id.")
    status = serializers.ChoiceField(required=False, choices=JobStatus.choices)


class TrainingJobListApi(ListApi):
    """Training jobs, newest first."""

    serializer_class = TrainingJobSerializer
    pagination_class = NewestCursor
    filter_serializer_class = JobFilters
    filter_lookups = {"round": "round_id", "experiment": "round__experiment_id"}
    queryset = TrainingJob.objects.all()


class TrainingJobDetailApi(DetailApi):
    serializer_class = TrainingJobDetailSerializer
    queryset = TrainingJob.objects.all()


class MetricFilters(FilterSerializer):
    name = serializers.CharField(required=False, max_length=64, help_text="One metric (loss, lr, eta_s, …).")
    after_step = serializers.IntegerField(required=False, min_value=0, help_text="Only steps after this one.")


class TrainingMetricListApi(ListApi):
    """A job's logged metrics, one row per (step, name), in the order they were stored."""

    serializer_class = TrainingMetricSerializer
    filter_serializer_class = MetricFilters
    filter_lookups = {"after_step": "step__gt"}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return TrainingMetric.objects.none()
        job = get_or_404(TrainingJob, self.kwargs["pk"], "training job")
        return TrainingMetric.objects.filter(job=job)


class TrainingJobCancelApi(APIView):
    """Stop a training job (operators): a queued one at once, a running one through its worker. A finished
    job is returned as it is."""

    permission_classes = [IsOperator]

    @extend_schema(request=None, responses={200: TrainingJobSerializer})
    def post(self, request, pk: int):
        get_or_404(TrainingJob, pk, "training job")
        job = training_job_cancel(job_id=pk, by=request.user)
        return Response(TrainingJobSerializer(job).data)


class ArtifactFilters(FilterSerializer):
    kind = serializers.ChoiceField(required=False, choices=Artifact.Kind.choices)
    round = serializers.IntegerField(required=False, min_value=1, help_text="A round's id.")
    training_job = serializers.IntegerField(required=False, min_value=1, help_text="A training job's id.")
    sha256 = serializers.CharField(required=False, max_length=64, help_text="The artifact's sha256.")


class ArtifactListApi(ListApi):
    """Artifacts, newest first."""

    serializer_class = ArtifactSerializer
    pagination_class = NewestCursor
    filter_serializer_class = ArtifactFilters
    filter_lookups = {"round": "round_id", "training_job": "training_job_id"}
    queryset = Artifact.objects.all()


class ArtifactDetailApi(DetailApi):
    serializer_class = ArtifactSerializer
    queryset = Artifact.objects.all()


class ArtifactMergeApi(APIView):
    """Merge a LoRA adapter into its base model on a gpu worker (operators). Pressed again it returns the
    adapter's queued, running or finished merge and queues nothing; an artifact that cannot be merged is a
    400 saying why."""

    permission_classes = [IsOperator]

    @extend_schema(request=None, responses={202: MergeJobSerializer})
    def post(self, request, pk: int):
        get_or_404(Artifact, pk, "artifact")
        job = artifact_merge(artifact_id=pk, by=request.user)
        return Response(MergeJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class MergeJobListApi(ListApi):
    """Merge jobs, newest first."""

    serializer_class = MergeJobSerializer
    pagination_class = NewestCursor
    filter_serializer_class = JobFilters
    filter_lookups = {"round": "adapter__round_id", "experiment": "adapter__round__experiment_id"}
    queryset = MergeJob.objects.all()


class ArtifactDownloadApi(APIView):
    """The artifact's files and a model card, as a zip streamed while it is written."""

    @extend_schema(
        responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="A zip archive.")}
    )
    def get(self, request, pk: int):
        artifact = get_or_404(Artifact, pk, "artifact")
        if not Path(artifact.path).is_dir():
            raise NotFound(f"The files of artifact #{pk} are not on this server's storage.")
        response = StreamingHttpResponse(artifact_zip_stream(artifact), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{zip_name(artifact)}"'
        return response
