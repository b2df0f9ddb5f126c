from django.urls import path

from apps.console import views

# No app namespace: `home` is the site's landing page (LOGIN_REDIRECT_URL, the brand link in base.html).
urlpatterns = [path("", views.home, name="home")]
