"""REST API of answers and judgments (under /api/v1/responses/ and /api/v1/judgments/), read-only: the
engine's stages write them."""

from rest_framework import serializers

from apps.core.api import DetailApi, FilterSerializer, ListApi
from apps.judging.models import Judgment, Response
from apps.judging.serializers import JudgmentSerializer, ResponseSerializer

LOOKUPS = {"instruction": "instruction_id", "round": "round_id", "experiment": "round__experiment_id"}


class ResponseFilters(FilterSerializer):
    instruction = serializers.IntegerField(required=False, min_value=1, help_text="An instruction's id.")
    round = serializers.IntegerField(required=False, min_value=1, help_text="A round's id.")
    experiment = serializers.IntegerField(required=False, min_value=1, help_text="An experiment's id.")
    role = serializers.ChoiceField(required=False, choices=Response.Role.choices)
    stage = serializers.CharField(required=False, max_length=32, help_text="The stage run's name.")


class ResponseListApi(ListApi):
    serializer_class = ResponseSerializer
    filter_serializer_class = ResponseFilters
    queryset = Response.objects.all()
    filter_lookups = LOOKUPS


class ResponseDetailApi(DetailApi):
    serializer_class = ResponseSerializer
    queryset = Response.objects.all()
    object_label = "response"


class JudgmentFilters(FilterSerializer):
    instruction = serializers.IntegerField(required=False, min_value=1, help_text="An instruction's id.")
    round = serializers.IntegerField(required=False, min_value=1, help_text="A round's id.")
    experiment = serializers.IntegerField(required=False, min_value=1, help_text="An experiment's id.")
    kind = serializers.ChoiceField(required=False, choices=Judgment.Kind.choices)
    verdict = serializers.ChoiceField(required=False, choices=Judgment.Verdict.choices)
    contested = serializers.BooleanField(required=False, help_text="The two orders disagreed.")


class JudgmentListApi(ListApi):
    serializer_class = JudgmentSerializer
    filter_serializer_class = JudgmentFilters
    queryset = Judgment.objects.all()
    filter_lookups = LOOKUPS


class JudgmentDetailApi(DetailApi):
    serializer_class = JudgmentSerializer
    queryset = Judgment.objects.all()
