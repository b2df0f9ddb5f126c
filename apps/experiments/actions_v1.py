"""REST API actions on experiments, each calling the service a page calls: create from a config (a JSON
object or YAML/JSON text), estimate round 1 of a config, start, pause, resume, cancel, approve-and-train.

Operators only (the permission class here, and the services check the role again). A config with problems
is a 400 listing each problem with its key path; a status change the engine does not allow is a 409."""

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import BaseParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import get_or_404
from apps.core.api_parsers import JSONParser
from apps.core.api_schema import ApiErrorSerializer
from apps.core.permissions import IsOperator, IsViewer
from apps.experiments.apis_v1 import ExperimentListApi
from apps.experiments.config import ConfigError, parse_config, resolve_config
from apps.experiments.estimates import estimate_round_one
from apps.experiments.machine import IllegalTransition
from apps.experiments.models import Experiment
from apps.experiments.serializers_v1 import (
    ConfigBodySerializer,
    ConfigErrorSerializer,
    EstimateSerializer,
    ExperimentCreateSerializer,
    ExperimentDetailSerializer,
    ReasonSerializer,
    StartSerializer,
)
from apps.experiments.services import (
    experiment_approve_and_train,
    experiment_cancel,
    experiment_create,
    experiment_pause,
    experiment_resume,
    experiment_start,
)
from apps.training.serializers import TrainingJobSerializer

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
MAX_CONFIG_BYTES = 1 << 20
ESTIMATE_KEYS = ("calls", "in_ledger", "prompt_tokens", "expected_tokens", "expected_cost", "max_cost")


class YamlConfigParser(BaseParser):
    """A config sent as YAML (or JSON) text: the whole body is the config, as if sent as {"config": text}."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_CONFIG_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_CONFIG_BYTES:
            raise ValidationError({"config": [f"A config is at most {MAX_CONFIG_BYTES:,} bytes."]})
        try:
            return {"config": raw.decode("utf-8")}
        except UnicodeDecodeError:
            raise ValidationError({"config": ["The config text is not UTF-8."]}) from None


class TextYamlConfigParser(YamlConfigParser):
    media_type = "text/yaml"


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def config_problems(exc: ConfigError) -> ValidationError:
    return ValidationError(
        {
            "detail": "The config has problems; each names its key path.",
            "problems": [{"path": path, "problem": problem} for path, problem in exc.problems],
        }
    )


def _parsed(raw):
    try:
        return parse_config(raw)
    except ConfigError as exc:
        raise config_problems(exc) from None


CONFIG_REQUEST = {
    "application/json": ExperimentCreateSerializer,
    "application/yaml": OpenApiTypes.STR,
    "text/yaml": OpenApiTypes.STR,
}
CONFIG_ERRORS = {400: OpenApiResponse(ConfigErrorSerializer, description="The config's problems, by key path.")}
CONFIG_EXAMPLE = OpenApiExample(
    "A Lion config",
    value={"config": {"name": "lion-1", "recipe": "lion", "dataset": "my-seeds"}, "start": True},
    request_only=True,
)


class ExperimentListCreateApi(ExperimentListApi):
    """GET: experiments, newest first (viewers). POST: create one from a config (operators) and, with
    start=true, start it. The same name with the same config returns the existing experiment (200); a
    new one is 201."""

    parser_classes = [JSONParser, YamlConfigParser, TextYamlConfigParser]

    def get_permissions(self):
        return [IsOperator()] if self.request.method == "POST" else [IsViewer()]

    @extend_schema(
        request=CONFIG_REQUEST,
        responses={201: ExperimentDetailSerializer, 200: ExperimentDetailSerializer, **CONFIG_ERRORS},
        examples=[CONFIG_EXAMPLE],
    )
    def post(self, request):
        params = ExperimentCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        config = _parsed(data["config"])
        existed = Experiment.objects.filter(name=config.name, config_hash=config.hash).exists()
        try:
            with transaction.atomic():
                experiment = experiment_create(config=config, by=request.user)
                if data["start"]:
                    experiment_start(experiment_id=experiment.pk, auto_approve=data.get("auto_approve"))
        except ConfigError as exc:
            raise config_problems(exc) from None
        experiment.refresh_from_db()
        code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        return Response(
            ExperimentDetailSerializer(experiment).data,
            status=code,
            headers={"Location": f"/api/v1/experiments/{experiment.pk}/"},
        )


class ExperimentEstimateApi(APIView):
    """What round 1 of a config would ask the LLMs, before anything is created or paid (operators, like
    the new-experiment page): calls, tokens and cost per stage, the ledger's hits counted apart."""

    permission_classes = [IsOperator]
    parser_classes = [JSONParser, YamlConfigParser, TextYamlConfigParser]

    @extend_schema(
        request={**CONFIG_REQUEST, "application/json": ConfigBodySerializer},
        responses={200: EstimateSerializer, **CONFIG_ERRORS},
    )
    def post(self, request):
        params = ConfigBodySerializer(data=request.data)
        params.is_valid(raise_exception=True)
        config = _parsed(params.validated_data["config"])
        try:
            rows = estimate_round_one(resolve_config(config))
        except ConfigError as exc:
            raise config_problems(exc) from None
        except ValueError as exc:
            raise ValidationError({"config": [str(exc)]}) from None
        body = {
            "name": config.name,
            "recipe": config.recipe,
            "config_hash": config.hash,
            "stages": rows,
            "totals": {key: sum(getattr(row, key) for row in rows) for key in ESTIMATE_KEYS},
            "notes": [{"path": path, "problem": text} for path, text in config.notes],
        }
        return Response(EstimateSerializer(body).data)


class _ExperimentAction(APIView):
    permission_classes = [IsOperator]
    body = None

    def act(self, request, experiment_id: int, data: dict):
        raise NotImplementedError

    def post(self, request, pk: int):
        get_or_404(Experiment, pk, "experiment")
        data = {}
        if self.body is not None:
            params = self.body(data=request.data)
            params.is_valid(raise_exception=True)
            data = params.validated_data
        try:
            result = self.act(request, pk, data)
        except IllegalTransition as exc:
            raise Conflict(str(exc)) from None
        return result


_CONFLICT = {409: OpenApiResponse(ApiErrorSerializer, description="The experiment's status does not allow it.")}


def _experiment(pk: int) -> Response:
    return Response(ExperimentDetailSerializer(Experiment.objects.get(pk=pk)).data)


class ExperimentStartApi(_ExperimentAction):
    """Start a draft experiment (a running one is left as it is); auto_approve may be set on the way."""

    body = StartSerializer

    @extend_schema(request=StartSerializer, responses={200: ExperimentDetailSerializer, **_CONFLICT})
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, experiment_id, data):
        experiment_start(experiment_id=experiment_id, auto_approve=data.get("auto_approve"))
        return _experiment(experiment_id)


class ExperimentPauseApi(_ExperimentAction):
    """Pause: its calls stop being sent and its stage stops; resume returns it to where it was."""

    body = ReasonSerializer

    @extend_schema(request=ReasonSerializer, responses={200: ExperimentDetailSerializer, **_CONFLICT})
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, experiment_id, data):
        experiment_pause(
            experiment_id=experiment_id, reason=data.get("reason") or "Paused by an operator.", by=request.user
        )
        return _experiment(experiment_id)


class ExperimentResumeApi(_ExperimentAction):
    """Resume a paused experiment at the status it was paused from."""

    @extend_schema(request=None, responses={200: ExperimentDetailSerializer, **_CONFLICT})
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, experiment_id, data):
        experiment_resume(experiment_id=experiment_id, by=request.user)
        return _experiment(experiment_id)


class ExperimentCancelApi(_ExperimentAction):
    """Stop for good: the open round and stage are cancelled and none of its calls are sent."""

    body = ReasonSerializer

    @extend_schema(request=ReasonSerializer, responses={200: ExperimentDetailSerializer, **_CONFLICT})
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, experiment_id, data):
        reason = data.get("reason") or "Cancelled by an operator."
        experiment_cancel(experiment_id=experiment_id, reason=reason, by=request.user)
        return _experiment(experiment_id)


class ExperimentApproveAndTrainApi(_ExperimentAction):
    """Freeze the waiting round's training set and queue its training job, once: pressed again (a retry,
    another operator) it returns the same job and queues nothing."""

    @extend_schema(request=None, responses={202: TrainingJobSerializer, **_CONFLICT})
    def post(self, request, pk: int):
        return super().post(request, pk)

    def act(self, request, experiment_id, data):
        job = experiment_approve_and_train(experiment_id=experiment_id, by=request.user)
        return Response(TrainingJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
