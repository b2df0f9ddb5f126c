from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection


class Command(BaseCommand):
    help = "Say which run mode is active and fail clearly if its database cannot be reached."

    def handle(self, **options):
        mode = settings.RUN_MODE
        self.stdout.write(f"Retort is running in {mode.describe()}")
        try:
            connection.ensure_connection()
        except OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            hint = (
                "Start PostgreSQL or correct DATABASE_URL. Retort never falls back to SQLite when DATABASE_URL is set."
                if not mode.is_embedded
                else "Check that var/ is writable."
            )
            raise CommandError(f"The database ({mode.database}) cannot be reached: {reason}. {hint}") from exc
