from django.urls import path

from apps.datasets import apis

urlpatterns = [
    path("datasets/", apis.DatasetListApi.as_view(), name="api-dataset-list"),
    path("datasets/<int:pk>/", apis.DatasetDetailApi.as_view(), name="api-dataset-detail"),
    path("datasets/<int:pk>/instructions/", apis.InstructionListApi.as_view(), name="api-instruction-list"),
    path("imports/", apis.ImportListApi.as_view(), name="api-import-list"),
    path("imports/new/", apis.ImportCreateApi.as_view(), name="api-import-create"),
    path("imports/<int:pk>/", apis.ImportDetailApi.as_view(), name="api-import-detail"),
]
