from django.urls import path

from apps.experiments import views

app_name = "experiments"
urlpatterns = [
    path("<int:pk>/costs/", views.experiment_costs, name="costs"),
]
