from django.urls import path

from apps.datasets import views

app_name = "datasets"
urlpatterns = [
    path("", views.dataset_index, name="list"),
    path("<int:pk>/", views.dataset_detail, name="detail"),
    path("<int:pk>/instructions/<int:instruction_pk>/", views.instruction_detail, name="instruction"),
    path("import/", views.import_start, name="import"),
    path("imports/<int:pk>/", views.import_job_detail, name="import-job"),
]
