from rest_framework import serializers

from apps.core.roles import Role, has_role
from apps.llm.models import LLMCall, LLMCallUse, LLMEndpoint
from apps.llm.services import ENDPOINT_FIELDS


class EndpointSerializer(serializers.ModelSerializer):
    """An endpoint as the API shows it. It never carries a key; the name of the key's variable
    (`api_key_env`) is shown to operators only."""

    is_offline = serializers.BooleanField(read_only=True)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not has_role(request.user, Role.OPERATOR):
            data.pop("api_key_env", None)
        return data

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


class TemplateSerializer(serializers.Serializer):
    """A versioned prompt template (workers/llm/prompts): what it asks, of which role, checked how."""

    id = serializers.CharField()
    version = serializers.IntegerField()
    purpose = serializers.CharField(help_text="The endpoint role that answers it.")
    contract = serializers.CharField(help_text="How its reply is checked.")
    title = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    variables = serializers.ListField(child=serializers.CharField())


class TemplateDetailSerializer(TemplateSerializer):
    system = serializers.CharField(allow_blank=True)
    user = serializers.CharField()
    examples = serializers.DictField(help_text="Worked examples shown to the model, by name.")


class EndpointCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField(help_text="What the endpoint answered, or why it could not be reached.")
    latency_ms = serializers.IntegerField(allow_null=True)
