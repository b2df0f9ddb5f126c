"""Writes for users and roles."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from apps.core.errors import RetortError
from apps.core.roles import Role


@transaction.atomic
def user_grant_role(*, username: str, role: Role) -> None:
    """Give the user exactly `role`: the role groups are nested, so any other role group is removed."""
    User = get_user_model()
    try:
        user = User.objects.select_for_update().get(username=username)
    except User.DoesNotExist:
        raise RetortError(f"No user named {username!r}.") from None
    groups = {r: Group.objects.get_or_create(name=r.group_name)[0] for r in Role}
    user.groups.remove(*[g for r, g in groups.items() if r != role])
    user.groups.add(groups[role])


@transaction.atomic
def admin_ensure(*, username: str, password: str | None) -> tuple[bool, str | None]:
    """Create the superuser if it does not exist. Returns (created, the password if one was generated)."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        return False, None
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(12)
    user = User(username=username, is_staff=True, is_superuser=True)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return True, generated
