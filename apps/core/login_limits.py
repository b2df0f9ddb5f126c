"""Login rate limiting: after RETORT_LOGIN_MAX_FAILURES failed sign-ins for one user name from one address
within RETORT_LOGIN_WINDOW_S seconds, that pair is locked out for RETORT_LOGIN_LOCKOUT_S seconds. The same
user from another address, and other users from the same address, are not affected; a successful sign-in
clears the count. A locked pair is refused even with the right password (otherwise guessing would go on).

The counts live in the shared cache (Redis in production, a folder under var/ embedded), so every web
process sees them. Three places use the limiter: the authentication backend refuses a locked pair for
every form that calls authenticate() (the site's login, the Django admin's); Django's login signals count
failures and clear them; the login forms say, in words, when to try again, and the login page answers 429.
There is no API sign-in to limit: API tokens are made by `manage.py drf_create_token`, not by a password.

With the cache unreachable (Redis restarting) the limiter fails open and logs it: sign-in goes on
unlimited for the outage rather than nobody being able to sign in, which would be a 500 for everyone.
"""

import functools
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.dispatch import receiver

from apps.core.enqueue import UNREACHABLE

log = logging.getLogger(__name__)

TOO_MANY_REQUESTS = 429


@dataclass(frozen=True)
class Limits:
    max_failures: int  # 0 turns the limiter off
    window_s: int
    lockout_s: int


def limits() -> Limits:
    return Limits(settings.RETORT_LOGIN_MAX_FAILURES, settings.RETORT_LOGIN_WINDOW_S, settings.RETORT_LOGIN_LOCKOUT_S)


def client_address(request) -> str:
    """The peer's address. X-Forwarded-For is not read: any client can write it, and trusting it would let
    an attacker pick a fresh address for every guess."""
    return (request.META.get("REMOTE_ADDR") or "") if request is not None else ""


def _open_when_unreachable(function):
    @functools.wraps(function)
    def guarded(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except UNREACHABLE as exc:
            log.warning("Login limiter off: the cache is unreachable (%s)", exc)
            return None

    return guarded


def _keys(username: str, address: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"{username.strip().casefold()}\0{address}".encode()).hexdigest()[:32]
    return f"retort:login-failures:{digest}", f"retort:login-locked:{digest}"


@_open_when_unreachable
def locked_until(username: str, address: str) -> float | None:
    """The Unix time the pair's lockout ends, or None when it may try."""
    if not limits().max_failures or not username:
        return None
    until = cache.get(_keys(username, address)[1])
    return until if until and until > time.time() else None


@_open_when_unreachable
def record_failure(username: str, address: str) -> float | None:
    """Count one failed sign-in; the lockout's end when this one reached the limit."""
    rules = limits()
    if not rules.max_failures or not username or locked_until(username, address):
        return None  # a refused attempt while locked does not extend the lockout
    count_key, lock_key = _keys(username, address)
    cache.add(count_key, 0, timeout=rules.window_s)  # the window starts with the first failure
    try:
        count = cache.incr(count_key)
    except ValueError:  # the window ran out between add and incr
        cache.set(count_key, 1, timeout=rules.window_s)
        count = 1
    if count < rules.max_failures:
        return None
    until = time.time() + rules.lockout_s
    cache.set(lock_key, until, timeout=rules.lockout_s)
    cache.delete(count_key)
    return until


@_open_when_unreachable
def reset(username: str, address: str) -> None:
    cache.delete_many(list(_keys(username, address)))


def lockout_message(until: float) -> str:
    minutes = max(1, round((until - time.time()) / 60))
    at = datetime.fromtimestamp(until, tz=UTC).strftime("%H:%M UTC")
    return (
        f"Too many failed sign-ins for this user name from your address. Sign-in is locked for "
        f"{minutes} minute{'s' if minutes != 1 else ''}: try again after {at}."
    )


@receiver(user_login_failed, dispatch_uid="retort-login-failed")
def _count_failure(sender, credentials, request=None, **kwargs):
    record_failure(credentials.get("username") or "", client_address(request))


@receiver(user_logged_in, dispatch_uid="retort-login-succeeded")
def _clear_failures(sender, request, user, **kwargs):
    if request is not None:
        reset(user.get_username(), client_address(request))


class RateLimitedModelBackend(ModelBackend):
    """Django's model backend, refusing a locked (user name, address) pair before the password is checked.
    PermissionDenied stops authenticate() at once, so no later backend is asked."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None and locked_until(username or "", client_address(request)):
            raise PermissionDenied("Sign-in is locked for this user name and address.")
        return super().authenticate(request, username=username, password=password, **kwargs)


class LockoutMessage:
    """For authentication forms: say when to try again instead of 'wrong password' while locked."""

    def clean(self):
        username = self.data.get("username", "")
        address = client_address(self.request)
        if until := locked_until(username, address):
            raise ValidationError(lockout_message(until), code="locked")
        try:
            return super().clean()
        except ValidationError:
            if until := locked_until(username, address):  # this failure reached the limit
                raise ValidationError(lockout_message(until), code="locked") from None
            raise


class LimitedAuthenticationForm(LockoutMessage, AuthenticationForm):
    pass


class LimitedAdminAuthenticationForm(LockoutMessage, AdminAuthenticationForm):
    pass


class LoginView(auth_views.LoginView):
    """The site's login page: while locked, the form says until when, with status 429."""

    authentication_form = LimitedAuthenticationForm

    def form_invalid(self, form):
        locked = form.non_field_errors()[0] if form.has_error("__all__", code="locked") else ""
        context = self.get_context_data(form=form, locked=locked)
        return self.render_to_response(context, status=TOO_MANY_REQUESTS if locked else 200)
