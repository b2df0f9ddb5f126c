"""Serializers of the REST API's experiment resources and actions (apps/experiments/apis_v1.py,
actions_v1.py, export_apis.py)."""

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from apps.core.api_pagination import MAX_ID
from apps.experiments.exports.models import FORMAT_CHOICES, ExportJob
from apps.experiments.exports.services import MAX_IDS
from apps.experiments.models import Evaluation, EvaluationCategory, Experiment, Round, StageRun


class UserNameFieldSchema(OpenApiSerializerFieldExtension):
    """The provenance view's UserNameField (apps/experiments/serializers.py) in the schema: a username, or
    null where the field allows it. Better moved beside the field as @extend_schema_field."""

    target_class = "apps.experiments.serializers.UserNameField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "nullable": bool(self.target.allow_null), "readOnly": True}


_EXPERIMENT_FIELDS = [
    "id",
    "name",
    "recipe",
    "status",
    "status_reason",
    "resume_status",
    "auto_approve",
    "seed",
    "config_hash",
    "dataset",
    "teacher_endpoint",
    "judge_endpoint",
    "generator_endpoint",
    "classifier_endpoint",
    "student_endpoint",
    "student_model",
    "budget_usd",
    "budget_tokens",
    "created_by",
    "created_at",
    "updated_at",
]


class ExperimentSerializer(serializers.ModelSerializer):
    # Declared: DRF drops allow_blank from a read-only model field, and the schema would then refuse "".
    resume_status = serializers.ChoiceField(
        choices=Experiment.Status.choices,
        allow_blank=True,
        read_only=True,
        help_text="While paused: the status it returns to when it resumes; blank otherwise.",
    )

    class Meta:
        model = Experiment
        fields = _EXPERIMENT_FIELDS
        read_only_fields = fields


class ExperimentDetailSerializer(ExperimentSerializer):
    """An experiment with its frozen config."""

    class Meta(ExperimentSerializer.Meta):
        fields = [*_EXPERIMENT_FIELDS, "config"]
        read_only_fields = fields


class RoundSerializer(serializers.ModelSerializer):
    class Meta:
        model = Round
        fields = [
            "id",
            "experiment",
            "index",
            "status",
            "params",
            "metrics",
            "training_set_hash",
            "approved_by",
            "approved_at",
            "finished_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class StageRunSerializer(serializers.ModelSerializer):
    experiment = serializers.IntegerField(source="round.experiment_id", read_only=True)

    class Meta:
        model = StageRun
        fields = [
            "id",
            "experiment",
            "round",
            "position",
            "name",
            "kind",
            "params",
            "status",
            "phase",
            "total",
            "done",
            "failed",
            "cost",
            "attempts",
            "started_at",
            "finished_at",
            "error",
        ]
        read_only_fields = fields


class EvaluationCategorySerializer(serializers.ModelSerializer):
    class Meta:
        model = EvaluationCategory
        fields = ["category", "n", "invalid", "win_rate", "ci_low", "ci_high", "labelled", "accuracy", "regressed"]
        read_only_fields = fields


class EvaluationSerializer(serializers.ModelSerializer):
    categories = EvaluationCategorySerializer(many=True, read_only=True)

    class Meta:
        model = Evaluation
        fields = [
            "id",
            "experiment",
            "round",
            "stage",
            "checkpoint",
            "n",
            "judged",
            "invalid",
            "wins",
            "ties",
            "losses",
            "win_rate",
            "ci_low",
            "ci_high",
            "lc_win_rate",
            "dataset_kind",
            "labelled",
            "correct",
            "accuracy",
            "accuracy_ci_low",
            "accuracy_ci_high",
            "regressions",
            "categories",
            "created_at",
        ]
        read_only_fields = fields


class EvaluationDetailSerializer(EvaluationSerializer):
    """An evaluation with its full win-rate report."""

    class Meta(EvaluationSerializer.Meta):
        fields = [*EvaluationSerializer.Meta.fields, "report"]
        read_only_fields = fields


# --- actions ---------------------------------------------------------------------------------------------
class ConfigBodySerializer(serializers.Serializer):
    config = serializers.JSONField(
        help_text="The experiment's config: an object, or its YAML or JSON text (see docs/experiment-config.md)."
    )

    def validate_config(self, value):
        if not isinstance(value, dict | str):
            raise serializers.ValidationError("A config is an object or YAML/JSON text.")
        if isinstance(value, str) and not value.strip():
            raise serializers.ValidationError("The config text is empty.")
        return value


class ExperimentCreateSerializer(ConfigBodySerializer):
    start = serializers.BooleanField(default=False, help_text="Start it at once.")
    auto_approve = serializers.BooleanField(
        required=False, help_text="Headless: gates and approve-and-train are decided without a person."
    )


class ConfigProblemSerializer(serializers.Serializer):
    path = serializers.CharField(help_text='The key path, e.g. "params.tau" or "datasets[1].weight".')
    problem = serializers.CharField()


class ConfigErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    problems = ConfigProblemSerializer(many=True)


class StageEstimateSerializer(serializers.Serializer):
    stage = serializers.CharField()
    role = serializers.CharField()
    calls = serializers.IntegerField()
    in_ledger = serializers.IntegerField(help_text="Calls the ledger already holds: they cost nothing.")
    prompt_tokens = serializers.IntegerField()
    expected_tokens = serializers.IntegerField()
    expected_cost = serializers.DecimalField(max_digits=18, decimal_places=8)
    max_cost = serializers.DecimalField(max_digits=18, decimal_places=8)
    note = serializers.CharField(allow_blank=True)


class EstimateTotalsSerializer(serializers.Serializer):
    calls = serializers.IntegerField()
    in_ledger = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    expected_tokens = serializers.IntegerField()
    expected_cost = serializers.DecimalField(max_digits=18, decimal_places=8)
    max_cost = serializers.DecimalField(max_digits=18, decimal_places=8)


class EstimateSerializer(serializers.Serializer):
    name = serializers.CharField()
    recipe = serializers.CharField()
    config_hash = serializers.CharField()
    stages = StageEstimateSerializer(many=True)
    totals = EstimateTotalsSerializer()
    notes = ConfigProblemSerializer(many=True, help_text="Keys allowed but without effect for this recipe.")


class StartSerializer(serializers.Serializer):
    auto_approve = serializers.BooleanField(
        required=False, help_text="Headless: gates and approve-and-train are decided without a person."
    )


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, max_length=2000, help_text="Shown with the experiment's status.")


# --- exports ---------------------------------------------------------------------------------------------
class ExportJobSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = ExportJob
        fields = [
            "id",
            "status",
            "format",
            "dataset",
            "round",
            "source_label",
            "filters",
            "options",
            "total",
            "done",
            "percent",
            "files",
            "manifest",
            "warnings",
            "error",
            "requested_by",
            "started_at",
            "finished_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ExportStartSerializer(serializers.Serializer):
    """A dataset (by id or name, with optional filters) or a round's frozen training set (experiment id or
    name and the round's index)."""

    format = serializers.ChoiceField(choices=[value for value, _ in FORMAT_CHOICES])
    dataset = serializers.CharField(required=False, max_length=200, help_text="A dataset's id or name.")
    experiment = serializers.CharField(required=False, max_length=200, help_text="An experiment's id or name.")
    round = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="The round's index (with experiment)."
    )
    category = serializers.CharField(required=False, default="", allow_blank=True, max_length=64)
    origin = serializers.CharField(required=False, default="", allow_blank=True, max_length=16)
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        max_length=MAX_IDS,
        help_text="Instruction ids.",
    )
    provenance = serializers.BooleanField(default=False, help_text="Add origin, seed and round to each record.")
    scores = serializers.BooleanField(default=False, help_text="Add the judge's scores.")
    review = serializers.BooleanField(default=False, help_text="Add the reviewers' decision.")
