from django.urls import include, path

from apps.console import views
from apps.console.views import charts, experiments, new

experiment_patterns = [
    path("", experiments.experiment_list, name="experiments"),
    path("new/", new.experiment_new, name="experiment-new"),
    path("<int:pk>/", experiments.experiment_detail, name="experiment"),
    path("<int:pk>/live/", experiments.experiment_live, name="experiment-live"),
    path("<int:pk>/stages/<int:stage_pk>/", experiments.stage_progress, name="stage-progress"),
    path("<int:pk>/training/<int:job_pk>/", experiments.training_status, name="training-status"),
    path("<int:pk>/training/<int:job_pk>/curves.json", charts.training_curves, name="training-curves"),
    path("<int:pk>/evaluations.json", charts.evaluation_data, name="evaluation-data"),
]
# One path per action (not a catch-all <slug>, which would shadow /experiments/<pk>/costs/).
experiment_patterns += [
    path(f"<int:pk>/{action}/", experiments.experiment_action, {"action": action}, name=f"experiment-{action}")
    for action in experiments.ACTIONS
]

# `home` has no namespace: it is the site's landing page (LOGIN_REDIRECT_URL, the brand link in base.html).
# The experiment pages are `console:*` under /experiments/, beside the experiments app's own pages there
# (costs, exports), whose paths these do not match.
urlpatterns = [
    path("", views.home, name="home"),
    path("experiments/", include((experiment_patterns, "console"))),
]
