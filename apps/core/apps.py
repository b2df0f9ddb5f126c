import logging

from django.apps import AppConfig

logger = logging.getLogger("retort")


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"


def log_run_mode() -> None:
    """Called by the WSGI/ASGI entry points and by Celery workers as they start."""
    from django.conf import settings

    logger.info("Retort is running in %s", settings.RUN_MODE.describe())
