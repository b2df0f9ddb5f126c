from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core.login_limits import LoginView

urlpatterns = [
    path("", include("apps.console.urls")),
    path("datasets/", include("apps.datasets.urls")),
    path("llm/", include("apps.llm.urls")),
    path("experiments/", include("apps.experiments.urls")),
    path("training/", include("apps.training.urls")),
    path("review/", include("apps.console.review_urls")),
    path("accounts/login/", LoginView.as_view(), name="login"),  # Django's, with the failed sign-in limit
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
