"""REST API of experiments, rounds, stage runs and evaluations: lists with filters and details
(read-only; the actions are in apps/experiments/actions_v1.py)."""

from rest_framework import serializers

from apps.core.api import DetailApi, FilterSerializer, ListApi, NewestCursor
from apps.experiments.models import Evaluation, Experiment, Round, StageRun
from apps.experiments.serializers_v1 import (
    EvaluationDetailSerializer,
    EvaluationSerializer,
    ExperimentDetailSerializer,
    ExperimentSerializer,
    RoundSerializer,
    StageRunSerializer,
)


class ExperimentFilters(FilterSerializer):
    status = serializers.ChoiceField(required=False, choices=Experiment.Status.choices)
    recipe = serializers.ChoiceField(required=False, choices=Experiment.Recipe.choices)
    dataset = serializers.IntegerField(required=False, min_value=1, help_text="Its seed dataset's id.")
    name = serializers.CharField(required=False, max_length=200, help_text="Part of the name, any case.")


class ExperimentListApi(ListApi):
    """Experiments, newest first. POST (operators) creates one from a config: see actions_v1."""

    serializer_class = ExperimentSerializer
    pagination_class = NewestCursor
    filter_serializer_class = ExperimentFilters
    filter_lookups = {"dataset": "dataset_id", "name": "name__icontains"}
    queryset = Experiment.objects.all()


class ExperimentDetailApi(DetailApi):
    serializer_class = ExperimentDetailSerializer
    queryset = Experiment.objects.all()


class RoundFilters(FilterSerializer):
    experiment = serializers.IntegerField(required=False, min_value=1, help_text="An experiment's id.")
    status = serializers.ChoiceField(required=False, choices=Round.Status.choices)
    index = serializers.IntegerField(required=False, min_value=1, help_text="The round's number (1, 2, …).")


class RoundListApi(ListApi):
    serializer_class = RoundSerializer
    filter_serializer_class = RoundFilters
    filter_lookups = {"experiment": "experiment_id"}
    queryset = Round.objects.all()


class RoundDetailApi(DetailApi):
    serializer_class = RoundSerializer
    queryset = Round.objects.all()


class StageRunFilters(FilterSerializer):
    experiment = serializers.IntegerField(required=False, min_value=1, help_text="An experiment's id.")
    round = serializers.IntegerField(required=False, min_value=1, help_text="A round's id.")
    status = serializers.ChoiceField(required=False, choices=StageRun.Status.choices)
    kind = serializers.CharField(required=False, max_length=32, help_text="answer, judge, select, gate, train, …")


class StageRunListApi(ListApi):
    serializer_class = StageRunSerializer
    filter_serializer_class = StageRunFilters
    filter_lookups = {"experiment": "round__experiment_id", "round": "round_id"}
    queryset = StageRun.objects.select_related("round")


class StageRunDetailApi(DetailApi):
    serializer_class = StageRunSerializer
    queryset = StageRun.objects.select_related("round")
    object_label = "stage run"


class EvaluationFilters(FilterSerializer):
    experiment = serializers.IntegerField(required=False, min_value=1, help_text="An experiment's id.")
    round = serializers.IntegerField(required=False, min_value=1, help_text="A round's id.")


class EvaluationListApi(ListApi):
    """Each round's evaluation with its task categories (the full report is in the detail)."""

    serializer_class = EvaluationSerializer
    filter_serializer_class = EvaluationFilters
    filter_lookups = {"experiment": "experiment_id", "round": "round_id"}
    queryset = Evaluation.objects.prefetch_related("categories")


class EvaluationDetailApi(DetailApi):
    serializer_class = EvaluationDetailSerializer
    queryset = Evaluation.objects.prefetch_related("categories")
