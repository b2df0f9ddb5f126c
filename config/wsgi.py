import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

from apps.core.apps import log_run_mode  # noqa: E402 - needs the app registry

log_run_mode()
