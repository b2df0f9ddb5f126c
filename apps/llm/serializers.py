from rest_framework import serializers

from apps.llm.models import LLMCall, LLMCallUse, LLMEndpoint
from apps.llm.services import ENDPOINT_FIELDS


class EndpointSerializer(serializers.ModelSerializer):
    """An endpoint as the API shows it. It carries the name of the key's variable, never a key."""

    is_offline = serializers.BooleanField(read_only=True)

    class Meta:
        model = LLMEndpoint
        fields = ["id", *ENDPOINT_FIELDS, "is_offline", "last_error", "last_error_at", "created_at", "updated_at"]
        read_only_fields = ["last_error", "last_error_at", "created_at", "updated_at"]


class CallUseSerializer(serializers.ModelSerializer):
    class Meta:
        model = LLMCallUse
        fields = ["id", "experiment", "round", "stage", "item", "paid", "created_at"]
        read_only_fields = fields


class CallSerializer(serializers.ModelSerializer):
    uses = CallUseSerializer(many=True, read_only=True)

    class Meta:
        model = LLMCall
        fields = [
            "id",
            "request_hash",
            "endpoint",
            "model",
            "purpose",
            "status",
            "reply",
            "finish_reason",
            "parsed",
            "error",
            "http_status",
            "attempts",
            "sample_index",
            "resample_of",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "latency_ms",
            "uses",
            "created_at",
            "finished_at",
            "request",
        ]
        read_only_fields = fields
