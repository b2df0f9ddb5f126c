from django.urls import path

from apps.datasets import apis, apis_v1

urlpatterns = [
    path("datasets/", apis_v1.DatasetListApi.as_view(), name="api-dataset-list"),
    path("datasets/<int:pk>/", apis_v1.DatasetDetailApi.as_view(), name="api-dataset-detail"),
    path("datasets/<int:pk>/instructions/", apis_v1.DatasetInstructionListApi.as_view(), name="api-instruction-list"),
    path("instructions/", apis_v1.InstructionListApi.as_view(), name="api-instructions"),
    path("instructions/<int:pk>/", apis_v1.InstructionDetailApi.as_view(), name="api-instruction-detail"),
    path("imports/", apis.ImportListApi.as_view(), name="api-import-list"),
    path("imports/new/", apis.ImportCreateApi.as_view(), name="api-import-create"),
    path("imports/<int:pk>/", apis.ImportDetailApi.as_view(), name="api-import-detail"),
]
