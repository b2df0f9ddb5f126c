from django.conf import settings

from apps.core.roles import Role, user_role


def run_mode(request):
    role = user_role(getattr(request, "user", None))
    return {
        "run_mode": settings.RUN_MODE,
        "user_role": role.group_name if role else None,
        "can_review": role is not None and role >= Role.REVIEWER,
        "can_operate": role is not None and role >= Role.OPERATOR,
    }
