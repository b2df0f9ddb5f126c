from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """Pages that combine several apps (the home page). The top layer: it may import any app, none imports it."""

    name = "apps.console"
    label = "console"
    verbose_name = "Console"
