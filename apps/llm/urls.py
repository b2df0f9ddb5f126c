from django.urls import path

from apps.llm import views

app_name = "llm"
urlpatterns = [
    path("endpoints/", views.endpoint_list, name="endpoints"),
    path("endpoints/new/", views.endpoint_create, name="endpoint-create"),
    path("endpoints/<int:pk>/", views.endpoint_detail, name="endpoint"),
    path("endpoints/<int:pk>/edit/", views.endpoint_edit, name="endpoint-edit"),
    path("endpoints/<int:pk>/test/", views.endpoint_test, name="endpoint-test"),
    path("classifier/", views.classifier_versions, name="classifier-versions"),
    path("classifier/retrain/", views.classifier_retrain, name="classifier-retrain"),
    path("prompts/", views.prompt_list, name="prompts"),
    path("prompts/<slug:template_id>/v<int:version>/", views.prompt_detail, name="prompt"),
    path("costs/", views.cost_overview, name="costs"),
]
