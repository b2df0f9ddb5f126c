from django.urls import path

from apps.judging import apis

urlpatterns = [
    path("responses/", apis.ResponseListApi.as_view(), name="api-response-list"),
    path("responses/<int:pk>/", apis.ResponseDetailApi.as_view(), name="api-response-detail"),
    path("judgments/", apis.JudgmentListApi.as_view(), name="api-judgment-list"),
    path("judgments/<int:pk>/", apis.JudgmentDetailApi.as_view(), name="api-judgment-detail"),
]
