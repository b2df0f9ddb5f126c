"""Roles and the one permission helper that views, APIs, tasks and commands all use.

Roles are Django groups and nest: an operator may do everything a reviewer may, a reviewer everything a
viewer may. Superusers hold every role.
"""

from enum import IntEnum

from django.core.exceptions import PermissionDenied


class Role(IntEnum):
    VIEWER = 1
    REVIEWER = 2
    OPERATOR = 3

    @property
    def group_name(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> "Role":
        try:
            return cls[name.strip().upper()]
        except KeyError:
            choices = ", ".join(r.group_name for r in cls)
            raise ValueError(f"Unknown role {name!r}; choose one of: {choices}.") from None


def user_role(user) -> Role | None:
    """The highest role the user holds, or None."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.OPERATOR
    cached = getattr(user, "_retort_role", False)
    if cached is not False:
        return cached
    names = set(user.groups.values_list("name", flat=True))
    held = [role for role in Role if role.group_name in names]
    role = max(held) if held else None
    user._retort_role = role
    return role


def has_role(user, role: Role) -> bool:
    held = user_role(user)
    return held is not None and held >= role


class RoleRequired(PermissionDenied):
    """A user lacks the role an action needs. The message names both roles, for the 403 page and the API."""

    def __init__(self, needed: Role, held: Role | None):
        self.needed, self.held = needed, held
        has = f"your account has the {held.group_name} role" if held else "your account has no role yet"
        super().__init__(f"This needs the {needed.group_name} role; {has}.")


def require_role(user, role: Role) -> None:
    """Raise PermissionDenied (RoleRequired) unless the user holds `role` (or a higher one)."""
    if not has_role(user, role):
        raise RoleRequired(role, user_role(user))
