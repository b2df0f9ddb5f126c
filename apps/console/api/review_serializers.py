"""Review tasks and verdicts as the API shows them, each task with its subject (the judgment, answer,
instruction, task label or call it is about) so that a script can decide without a second request."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.datasets.models import Instruction
from apps.datasets.serializers import InstructionSerializer
from apps.experiments.models import TaskLabel
from apps.judging.models import Judgment, Response
from apps.judging.serializers import JudgmentSerializer, ResponseSerializer
from apps.llm.models import LLMCall, LLMCallUse
from apps.llm.serializers import CallUseSerializer
from apps.reviews.kinds import ALLOWED, Decision
from apps.reviews.models import ReviewTask, ReviewVerdict


class TaskLabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaskLabel
        fields = ["id", "experiment", "instruction", "category", "confidence", "source", "created_at"]
        read_only_fields = fields


class ReviewedCallSerializer(serializers.ModelSerializer):
    """An LLM call whose reply could not be parsed: what was asked and what came back."""

    class Meta:
        model = LLMCall
        fields = ["id", "endpoint", "model", "purpose", "status", "request", "reply", "error", "created_at"]
        read_only_fields = fields


class ReviewedCallUseSerializer(CallUseSerializer):
    class Meta(CallUseSerializer.Meta):
        fields = [*CallUseSerializer.Meta.fields, "call"]
        read_only_fields = fields


SUBJECT_SERIALIZERS = {
    Judgment: JudgmentSerializer,
    Response: ResponseSerializer,
    Instruction: InstructionSerializer,
    TaskLabel: TaskLabelSerializer,
    LLMCall: ReviewedCallSerializer,
    LLMCallUse: ReviewedCallUseSerializer,
}


@extend_schema_field(
    {
        "type": "object",
        "nullable": True,
        "description": "The reviewed row: its type (app.model), id and fields; null when it was deleted.",
        "properties": {"type": {"type": "string"}, "id": {"type": "integer"}, "data": {"type": "object"}},
    }
)
class SubjectField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, task):
        subject = task.subject
        if subject is None:
            return None
        serializer = SUBJECT_SERIALIZERS.get(type(subject))
        meta = subject._meta
        data = serializer(subject).data if serializer else {}
        return {"type": f"{meta.app_label}.{meta.model_name}", "id": subject.pk, "data": data}


class ReviewTaskSerializer(serializers.ModelSerializer):
    experiment = serializers.SerializerMethodField()
    subject_type = serializers.SerializerMethodField()
    allowed_decisions = serializers.SerializerMethodField()
    subject = SubjectField()
    # Declared: DRF drops allow_blank from a read-only model field, and the schema would then refuse "".
    decision = serializers.ChoiceField(
        choices=Decision.choices, allow_blank=True, read_only=True, help_text="The resolution; blank until decided."
    )

    class Meta:
        model = ReviewTask
        fields = [
            "id",
            "kind",
            "round",
            "experiment",
            "status",
            "priority",
            "required_reviews",
            "allowed_decisions",
            "subject_type",
            "subject_id",
            "subject",
            "decision",
            "edited_text",
            "note",
            "resolved_at",
            "resolved_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_experiment(self, task) -> int | None:
        return task.round.experiment_id if task.round_id else None

    def get_subject_type(self, task) -> str:
        return f"{task.subject_type.app_label}.{task.subject_type.model}"

    @extend_schema_field({"type": "array", "items": {"type": "string", "enum": list(Decision.values)}})
    def get_allowed_decisions(self, task) -> list[str]:
        return [str(d) for d in ALLOWED.get(task.kind, ())]


class ReviewVerdictSerializer(serializers.ModelSerializer):
    reviewer_name = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = ReviewVerdict
        fields = ["id", "task", "reviewer", "reviewer_name", "decision", "edited_text", "note", "created_at"]
        read_only_fields = fields


class ReviewTaskDetailSerializer(ReviewTaskSerializer):
    """A task with every verdict given on it (a reviewer's newer verdict replaces his vote)."""

    verdicts = ReviewVerdictSerializer(many=True, read_only=True)

    class Meta(ReviewTaskSerializer.Meta):
        fields = [*ReviewTaskSerializer.Meta.fields, "verdicts"]
        read_only_fields = fields


class ClaimSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ReviewTask.Kind.choices, help_text="The queue.")
    round = serializers.IntegerField(required=False, min_value=1, help_text="Only this round's tasks (its id).")
    experiment = serializers.IntegerField(required=False, min_value=1, help_text="Only this experiment's tasks.")
    lease_s = serializers.IntegerField(
        required=False, min_value=1, max_value=24 * 3600, help_text="How long the claim holds (default 600 s)."
    )


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Decision.choices)
    edited_text = serializers.CharField(required=False, default="", allow_blank=True, max_length=200_000)
    note = serializers.CharField(required=False, default="", allow_blank=True, max_length=10_000)


class ReleaseSerializer(serializers.Serializer):
    released = serializers.BooleanField(help_text="False when you held no claim on the task.")
