"""REST API of datasets and their instructions, with filters (under /api/v1/datasets/ and
/api/v1/instructions/). Importing a file is apps.datasets.apis (POST /api/v1/imports/new/)."""

from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from apps.core.api import DetailApi, FilterSerializer, ListApi, get_or_404
from apps.datasets.models import Dataset, Instruction
from apps.datasets.serializers import DatasetSerializer, InstructionSerializer

MAX_SEARCH = 200


class DatasetFilters(FilterSerializer):
    name = serializers.CharField(required=False, max_length=200, help_text="Part of the name, any case.")
    license = serializers.CharField(required=False, max_length=200, help_text="The licence, exactly.")
    include_owned = serializers.BooleanField(
        required=False, help_text="Also list the datasets experiments own (what they generated)."
    )


class DatasetListApi(ListApi):
    """Datasets by id. Those an experiment owns (its generated instructions) are left out unless
    include_owned=true."""

    serializer_class = DatasetSerializer
    filter_serializer_class = DatasetFilters
    queryset = Dataset.objects.all()

    def filter_by(self, queryset, data):
        if not data.get("include_owned"):
            queryset = queryset.filter(owner_experiment__isnull=True)
        if data.get("name"):
            queryset = queryset.filter(name__icontains=data["name"])
        if "license" in data:
            queryset = queryset.filter(license=data["license"])
        return queryset


class DatasetDetailApi(DetailApi):
    serializer_class = DatasetSerializer
    queryset = Dataset.objects.all()


class InstructionFilters(FilterSerializer):
    dataset = serializers.IntegerField(required=False, min_value=1, help_text="A dataset's id.")
    category = serializers.CharField(required=False, max_length=64, allow_blank=True, help_text="Task category.")
    origin = serializers.ChoiceField(required=False, choices=Instruction.Origin.choices)
    search = serializers.CharField(
        required=False, max_length=MAX_SEARCH, help_text="Text in the instruction or its input, any case."
    )
    round = serializers.IntegerField(required=False, min_value=1, help_text="Generated in this round (its id).")
    parent = serializers.IntegerField(required=False, min_value=1, help_text="Generated from this instruction.")


def instruction_filter(queryset, data: dict):
    if "dataset" in data:
        queryset = queryset.filter(dataset_id=data["dataset"])
    if "category" in data:
        queryset = queryset.filter(task_category=data["category"])
    if "origin" in data:
        queryset = queryset.filter(origin=data["origin"])
    if "round" in data:
        queryset = queryset.filter(created_in_round_id=data["round"])
    if "parent" in data:
        queryset = queryset.filter(parent_id=data["parent"])
    search = (data.get("search") or "").strip()
    if search:
        queryset = queryset.filter(Q(text__icontains=search) | Q(input__icontains=search))
    return queryset


class InstructionListApi(ListApi):
    """Instructions by id, across datasets or in one (dataset=<id>), by task category, origin, text."""

    serializer_class = InstructionSerializer
    filter_serializer_class = InstructionFilters
    queryset = Instruction.objects.all()

    def filter_by(self, queryset, data):
        return instruction_filter(queryset, data)


class DatasetInstructionListApi(InstructionListApi):
    """One dataset's instructions (the same filters as /instructions/)."""

    @extend_schema(operation_id="datasets_instructions_list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator looks without a request
            return Instruction.objects.none()
        dataset = get_or_404(Dataset, self.kwargs["pk"], "dataset")
        return Instruction.objects.filter(dataset=dataset)


class InstructionDetailApi(DetailApi):
    serializer_class = InstructionSerializer
    queryset = Instruction.objects.all()
