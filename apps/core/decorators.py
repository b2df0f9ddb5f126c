"""View decorators. Login itself is enforced for every page by middleware; these add the role."""

from functools import wraps

from apps.core.roles import Role, require_role


def role_required(role: Role):
    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            require_role(request.user, role)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator
