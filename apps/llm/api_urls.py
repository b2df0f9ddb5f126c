from django.urls import path

from apps.llm import apis

urlpatterns = [
    path("llm/endpoints/", apis.EndpointListApi.as_view(), name="api-llm-endpoint-list"),
    path("llm/endpoints/<int:pk>/", apis.EndpointDetailApi.as_view(), name="api-llm-endpoint-detail"),
    path("llm/endpoints/<int:pk>/test/", apis.EndpointTestApi.as_view(), name="api-llm-endpoint-test"),
    path("llm/calls/", apis.CallListApi.as_view(), name="api-llm-call-list"),
    path("llm/prompts/", apis.PromptListApi.as_view(), name="api-llm-prompt-list"),
    path("llm/prompts/<slug:template_id>/v<int:version>/", apis.PromptDetailApi.as_view(), name="api-llm-prompt"),
]
