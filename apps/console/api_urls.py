from django.urls import path

from apps.console.api import reviews

urlpatterns = [
    path("reviews/tasks/", reviews.ReviewTaskListApi.as_view(), name="api-review-task-list"),
    path("reviews/tasks/<int:pk>/", reviews.ReviewTaskDetailApi.as_view(), name="api-review-task-detail"),
    path("reviews/tasks/<int:pk>/verdicts/", reviews.ReviewDecideApi.as_view(), name="api-review-task-decide"),
    path("reviews/tasks/<int:pk>/release/", reviews.ReviewReleaseApi.as_view(), name="api-review-task-release"),
    path("reviews/tasks/<int:pk>/resolve/", reviews.ReviewResolveApi.as_view(), name="api-review-task-resolve"),
    path("reviews/claim/", reviews.ReviewClaimApi.as_view(), name="api-review-claim"),
    path("reviews/verdicts/", reviews.ReviewVerdictListApi.as_view(), name="api-review-verdict-list"),
    path("reviews/verdicts/<int:pk>/", reviews.ReviewVerdictDetailApi.as_view(), name="api-review-verdict-detail"),
]
