import logging

from django.apps import AppConfig

logger = logging.getLogger("retort")


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.contrib import admin
        from django.db.models.signals import post_migrate

        from apps.core import login_limits  # connects the login signals that count failed sign-ins

        post_migrate.connect(_ensure_role_groups, sender=self, dispatch_uid="retort-role-groups")
        admin.site.login_form = login_limits.LimitedAdminAuthenticationForm


def _ensure_role_groups(using=None, **kwargs) -> None:
    """The role groups exist after every migrate and every flush (which re-sends post_migrate), not only
    after the first migration: a flushed database would otherwise refuse every grant_role."""
    from django.contrib.auth.models import Group

    from apps.core.roles import Role

    for role in Role:
        Group.objects.using(using).get_or_create(name=role.group_name)


def log_run_mode() -> None:
    """Called by the WSGI/ASGI entry points and by Celery workers as they start."""
    from django.conf import settings

    logger.info("Retort is running in %s", settings.RUN_MODE.describe())
