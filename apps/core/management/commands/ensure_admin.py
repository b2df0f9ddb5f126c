import os

from django.core.management.base import BaseCommand

from apps.core.services import admin_ensure


class Command(BaseCommand):
    help = (
        "Create the admin superuser once. Credentials come from RETORT_ADMIN_USERNAME / "
        "RETORT_ADMIN_PASSWORD, or a password is generated and printed this one time."
    )

    def handle(self, **options):
        username = os.environ.get("RETORT_ADMIN_USERNAME", "admin")
        created, generated = admin_ensure(username=username, password=os.environ.get("RETORT_ADMIN_PASSWORD"))
        if generated:
            self.stdout.write(
                self.style.WARNING(
                    f"Created the admin user. Log in as {username!r} with password {generated!r} "
                    "(shown only this once; change it in the admin)."
                )
            )
        elif created:
            self.stdout.write(f"Created the admin user {username!r} with the password in RETORT_ADMIN_PASSWORD.")
        else:
            self.stdout.write(f"Admin user {username!r} exists.")
