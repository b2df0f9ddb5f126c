import io

import pytest
from django.core.management import CommandError, call_command

from apps.core.roles import Role, has_role, require_role, user_role
from tests.factories import UserFactory, user_with_role

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("held", "needed", "allowed"),
    [
        (Role.VIEWER, Role.VIEWER, True),
        (Role.VIEWER, Role.REVIEWER, False),
        (Role.REVIEWER, Role.VIEWER, True),
        (Role.REVIEWER, Role.OPERATOR, False),
        (Role.OPERATOR, Role.REVIEWER, True),
        (None, Role.VIEWER, False),
    ],
)
def test_roles_nest(held, needed, allowed):
    assert has_role(user_with_role(held), needed) is allowed


def test_superuser_holds_every_role():
    admin = UserFactory(is_superuser=True)
    assert user_role(admin) == Role.OPERATOR


def test_inactive_user_holds_no_role():
    user = user_with_role(Role.OPERATOR)
    user.is_active = False
    assert user_role(user) is None


def test_require_role_raises_permission_denied():
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied, match="reviewer"):
        require_role(user_with_role(Role.VIEWER), Role.REVIEWER)


def test_grant_role_command_replaces_the_previous_role():
    user = user_with_role(Role.OPERATOR)
    out = io.StringIO()
    call_command("grant_role", user.username, "viewer", stdout=out)
    assert out.getvalue() == f"{user.username} is now a viewer.\n"
    call_command("grant_role", user.username, "operator", stdout=out)
    assert out.getvalue().endswith(f"{user.username} is now an operator.\n")
    call_command("grant_role", user.username, "viewer")
    user.refresh_from_db()
    assert sorted(user.groups.values_list("name", flat=True)) == ["viewer"]
    assert user_role(user) == Role.VIEWER


def test_grant_role_command_rejects_unknown_user_and_role():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("grant_role", "ghost", "viewer")
    user = UserFactory()
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("grant_role", user.username, "wizard")


def test_role_groups_exist_after_migrations():
    from django.contrib.auth.models import Group

    assert set(Group.objects.values_list("name", flat=True)) >= {"viewer", "reviewer", "operator"}


@pytest.mark.django_db(transaction=True)
def test_role_groups_come_back_after_a_flush():
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    call_command("flush", verbosity=0, interactive=False)
    assert set(Group.objects.values_list("name", flat=True)) >= {"viewer", "reviewer", "operator"}
