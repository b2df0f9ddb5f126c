from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import RetortError
from apps.core.roles import Role
from apps.core.services import user_grant_role


class Command(BaseCommand):
    help = "Give a user one role: viewer, reviewer or operator (roles nest: operator > reviewer > viewer)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("role", choices=[r.group_name for r in Role])

    def handle(self, username, role, **options):
        try:
            user_grant_role(username=username, role=Role.parse(role))
        except RetortError as exc:
            raise CommandError(str(exc)) from exc
        article = "an" if role[0] in "aeiou" else "a"
        self.stdout.write(self.style.SUCCESS(f"{username} is now {article} {role}."))
