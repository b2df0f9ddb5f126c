"""REST API of the review queues (under /api/v1/reviews/): tasks with their subjects, verdicts, and the
reviewer's actions — claim the next task of a queue, vote on it, release it — plus an operator's
resolution of a conflict. The services (apps.reviews) check the role and every decision."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.console.api.review_serializers import (
    ClaimSerializer,
    DecisionSerializer,
    ReleaseSerializer,
    ReviewTaskDetailSerializer,
    ReviewTaskSerializer,
    ReviewVerdictSerializer,
)
from apps.core.api import DetailApi, FilterSerializer, ListApi, get_or_404
from apps.core.permissions import IsOperator, IsReviewer
from apps.reviews.claiming import review_claim_next, review_release
from apps.reviews.models import ReviewTask, ReviewVerdict
from apps.reviews.services import review_decide, review_resolve

TASKS = ReviewTask.objects.select_related("subject_type", "round").prefetch_related("subject")


class TaskFilters(FilterSerializer):
    kind = serializers.ChoiceField(required=False, choices=ReviewTask.Kind.choices)
    status = serializers.ChoiceField(required=False, choices=ReviewTask.Status.choices)
    round = serializers.IntegerField(required=False, min_value=1, help_text="A round's id.")
    experiment = serializers.IntegerField(required=False, min_value=1, help_text="An experiment's id.")
    decision = serializers.ChoiceField(required=False, choices=ReviewTask.decision.field.choices)


class ReviewTaskListApi(ListApi):
    """Review tasks by id, each with the row it is about."""

    serializer_class = ReviewTaskSerializer
    filter_serializer_class = TaskFilters
    filter_lookups = {"round": "round_id", "experiment": "round__experiment_id"}
    queryset = TASKS


class ReviewTaskDetailApi(DetailApi):
    serializer_class = ReviewTaskDetailSerializer
    object_label = "review task"

    def get_queryset(self):
        return TASKS.prefetch_related("verdicts__reviewer")


class VerdictFilters(FilterSerializer):
    task = serializers.IntegerField(required=False, min_value=1, help_text="A review task's id.")
    reviewer = serializers.IntegerField(required=False, min_value=1, help_text="A reviewer's user id.")
    decision = serializers.ChoiceField(required=False, choices=ReviewVerdict.Decision.choices)
    round = serializers.IntegerField(required=False, min_value=1, help_text="A round's id.")
    experiment = serializers.IntegerField(required=False, min_value=1, help_text="An experiment's id.")


class ReviewVerdictListApi(ListApi):
    """Every verdict given, by id (append-only: a change of mind is a newer verdict)."""

    serializer_class = ReviewVerdictSerializer
    filter_serializer_class = VerdictFilters
    filter_lookups = {
        "task": "task_id",
        "reviewer": "reviewer_id",
        "round": "task__round_id",
        "experiment": "task__round__experiment_id",
    }
    queryset = ReviewVerdict.objects.select_related("reviewer")


class ReviewVerdictDetailApi(DetailApi):
    serializer_class = ReviewVerdictSerializer
    queryset = ReviewVerdict.objects.select_related("reviewer")
    object_label = "review verdict"


def _task(pk: int) -> dict:
    return ReviewTaskDetailSerializer(ReviewTaskDetailApi().get_queryset().get(pk=pk)).data


class ReviewClaimApi(APIView):
    """The next task of a queue for you, held for lease_s seconds (reviewers). Asking again while you hold
    one returns the same task with its lease renewed; 204 when the queue has nothing left for you."""

    permission_classes = [IsReviewer]

    @extend_schema(
        request=ClaimSerializer,
        responses={200: ReviewTaskDetailSerializer, 204: OpenApiResponse(description="Nothing left to claim.")},
    )
    def post(self, request):
        params = ClaimSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        kwargs = {"lease_s": data["lease_s"]} if "lease_s" in data else {}
        task = review_claim_next(
            reviewer=request.user,
            kind=data["kind"],
            round_ids=[data["round"]] if "round" in data else None,
            experiment_id=data.get("experiment"),
            **kwargs,
        )
        if task is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_task(task.pk))


class ReviewDecideApi(APIView):
    """Your vote on a task you hold, or on one with a free slot (reviewers). A second vote replaces your
    first while the task is not done. Answers the task as it now stands: done with its resolution, in
    conflict, or waiting for other reviewers."""

    permission_classes = [IsReviewer]

    @extend_schema(request=DecisionSerializer, responses={201: ReviewTaskDetailSerializer})
    def post(self, request, pk: int):
        get_or_404(ReviewTask, pk, "review task")
        params = DecisionSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        review_decide(reviewer=request.user, task_id=pk, **params.validated_data)
        return Response(_task(pk), status=status.HTTP_201_CREATED)


class ReviewReleaseApi(APIView):
    """Leave a task you hold: its slot is free for another reviewer (a vote you gave stays)."""

    permission_classes = [IsReviewer]

    @extend_schema(request=None, responses={200: ReleaseSerializer})
    def post(self, request, pk: int):
        get_or_404(ReviewTask, pk, "review task")
        return Response({"released": review_release(reviewer=request.user, task_id=pk)})


class ReviewResolveApi(APIView):
    """Settle a task (operators), typically one whose reviewers disagree: the decision becomes its
    resolution."""

    permission_classes = [IsOperator]

    @extend_schema(request=DecisionSerializer, responses={200: ReviewTaskDetailSerializer})
    def post(self, request, pk: int):
        get_or_404(ReviewTask, pk, "review task")
        params = DecisionSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        review_resolve(by=request.user, task_id=pk, **params.validated_data)
        return Response(_task(pk))
