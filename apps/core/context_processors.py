from django.conf import settings

from apps.core.roles import Role, user_role


def run_mode(request):
    user = getattr(request, "user", None)
    role = user_role(user)
    mode = settings.RUN_MODE
    return {
        # Everyone may know which mode runs; where the database and broker live (paths, hosts, the
        # database user) is for staff only, and never on the public login page.
        "run_mode": f"{mode.name} mode",
        "run_topology": mode.describe() if getattr(user, "is_staff", False) and user.is_active else "",
        "user_role": role.group_name if role else None,
        "can_review": role is not None and role >= Role.REVIEWER,
        "can_operate": role is not None and role >= Role.OPERATOR,
    }
