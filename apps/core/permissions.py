"""DRF permission classes over the role helper."""

from rest_framework.permissions import BasePermission

from apps.core.roles import Role, has_role


class _HasRole(BasePermission):
    role: Role

    def has_permission(self, request, view) -> bool:
        return has_role(request.user, self.role)


class IsViewer(_HasRole):
    role = Role.VIEWER
    message = "This needs the viewer role."


class IsReviewer(_HasRole):
    role = Role.REVIEWER
    message = "This needs the reviewer role."


class IsOperator(_HasRole):
    role = Role.OPERATOR
    message = "This needs the operator role."
