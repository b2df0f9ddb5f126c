from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from apps.judging.models import Judgment, Response


class ResponseSerializer(serializers.ModelSerializer):
    """An answer as stored: the teacher's, the student's, a style rewrite or a rationale. Its text is the
    model's output, untrusted: clients that render it must escape it."""

    class Meta:
        model = Response
        fields = [
            "id",
            "instruction",
            "role",
            "round",
            "model",
            "endpoint",
            "llm_call",
            "stage",
            "checkpoint",
            "text",
            "parsed_label",
            "rationale",
            "style",
            "rewrites",
            "template_id",
            "template_version",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "created_at",
        ]
        read_only_fields = fields


@extend_schema_serializer(component_name="JudgmentRow")  # "Judgment" is the provenance view's shape
class JudgmentSerializer(serializers.ModelSerializer):
    """The referee's comparison in both orders: the scores of each order, their mean, the gap (teacher −
    student), the verdict (hard, easy, invalid) and whether the orders disagreed."""

    class Meta:
        model = Judgment
        fields = [
            "id",
            "instruction",
            "round",
            "kind",
            "teacher_response",
            "student_response",
            "judge_model",
            "endpoint",
            "template_id",
            "template_version",
            "call_teacher_first",
            "call_student_first",
            "raw_teacher_first",
            "raw_student_first",
            "teacher_first_teacher_score",
            "teacher_first_student_score",
            "student_first_student_score",
            "student_first_teacher_score",
            "teacher_score",
            "student_score",
            "gap",
            "verdict",
            "contested",
            "created_at",
        ]
        read_only_fields = fields
