from django.urls import path

from apps.llm import apis, apis_v1

urlpatterns = [
    path("llm/endpoints/", apis.EndpointListApi.as_view(), name="api-llm-endpoint-list"),
    path("llm/endpoints/<int:pk>/", apis.EndpointDetailApi.as_view(), name="api-llm-endpoint-detail"),
    path("llm/endpoints/<int:pk>/test/", apis.EndpointTestApi.as_view(), name="api-llm-endpoint-test"),
    path("llm/calls/", apis_v1.CallListApi.as_view(), name="api-llm-call-list"),
    path("llm/costs/", apis_v1.CostRollupApi.as_view(), name="api-llm-costs"),
    path("llm/prompts/", apis.PromptListApi.as_view(), name="api-llm-prompt-list"),
    path("llm/prompts/<slug:template_id>/v<int:version>/", apis.PromptDetailApi.as_view(), name="api-llm-prompt"),
]
