from django.urls import path

from apps.experiments import views

app_name = "experiments"
urlpatterns = [
    path("<int:pk>/costs/", views.experiment_costs, name="costs"),
    path("instructions/<int:pk>/provenance/", views.instruction_provenance_page, name="provenance"),
    path("exports/", views.exports_page, name="exports"),
    path("exports/<int:pk>/", views.export_job_detail, name="export-job"),
    path("exports/<int:pk>/files/<str:name>", views.export_download, name="export-download"),
]
