"""REST API of the gateway's ledger (GET /api/v1/llm/calls/, with checked filters) and its cost roll-ups
(GET /api/v1/llm/costs/): the whole ledger, and each experiment's spend and what the ledger saved it. One
experiment's by round and stage is /api/v1/experiments/<id>/costs/."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import FilterSerializer, ListApi, NewestCursor
from apps.llm.models import LLMCall, LLMCallUse
from apps.llm.selectors import cost_rollup_experiments, ledger_totals
from apps.llm.serializers import CallSerializer

MONEY = {"max_digits": 20, "decimal_places": 8}


class CostRowSerializer(serializers.Serializer):
    calls = serializers.IntegerField()
    ok = serializers.IntegerField()
    invalid = serializers.IntegerField()
    failed = serializers.IntegerField()
    pending = serializers.IntegerField()
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    tokens = serializers.IntegerField()
    cost = serializers.DecimalField(**MONEY)
    saved = serializers.DecimalField(**MONEY, help_text="What calls served from the ledger would have cost.")
    avg_latency_ms = serializers.FloatField(allow_null=True)


class ExperimentCostSerializer(CostRowSerializer):
    experiment_id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    budget_usd = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    budget_tokens = serializers.IntegerField(allow_null=True)
    from_ledger = serializers.IntegerField(help_text="Uses served by a call another use had paid for.")


class LedgerTotalsSerializer(CostRowSerializer):
    unused = CostRowSerializer(help_text="Calls no experiment uses (scripts, connection tests).")


class CostsSerializer(serializers.Serializer):
    ledger = LedgerTotalsSerializer()
    experiments = ExperimentCostSerializer(many=True)


class CostRollupApi(APIView):
    """Everything the ledger holds, and per experiment that used the gateway (newest first) its calls,
    tokens, cost, and the cost saved by calls it did not pay twice."""

    @extend_schema(responses={200: CostsSerializer})
    def get(self, request):
        return Response(CostsSerializer({"ledger": ledger_totals(), "experiments": cost_rollup_experiments()}).data)


class CallFilters(FilterSerializer):
    experiment = serializers.IntegerField(required=False, min_value=1, help_text="Used by this experiment (its id).")
    round = serializers.IntegerField(required=False, min_value=1, help_text="Used in this round (its id).")
    stage = serializers.CharField(required=False, max_length=32, help_text="Used by this stage run (its name).")
    item = serializers.CharField(required=False, max_length=200, help_text="Used for this item (the stage's key).")
    endpoint = serializers.IntegerField(required=False, min_value=1, help_text="Sent to this endpoint (its id).")
    status = serializers.ChoiceField(required=False, choices=LLMCall.Status.choices)
    purpose = serializers.CharField(required=False, max_length=32, help_text="teacher, judge, generator, …")


class CallListApi(ListApi):
    """The ledger, newest first: each paid call once, with its uses (which experiment, round, stage and
    item asked for it)."""

    serializer_class = CallSerializer
    pagination_class = NewestCursor
    filter_serializer_class = CallFilters
    queryset = LLMCall.objects.prefetch_related("uses")

    def filter_by(self, queryset, data):
        uses = {f"{name}_id": data[name] for name in ("experiment", "round") if name in data}
        uses.update({name: data[name] for name in ("stage", "item") if name in data})
        if uses:
            queryset = queryset.filter(pk__in=LLMCallUse.objects.filter(**uses).values("call_id"))
        if "endpoint" in data:
            queryset = queryset.filter(endpoint_id=data["endpoint"])
        return queryset.filter(**{name: data[name] for name in ("status", "purpose") if name in data})
