"""Which environment variables may be sent to an LLM endpoint as its API key.

An endpoint names the variable that holds its key, and the client sends that variable's value as a
Bearer token to the endpoint's base URL. If any name were accepted, whoever can edit an endpoint could
name `SECRET_KEY` or `DATABASE_URL`, point the endpoint at a server of their own, press "test connection"
and receive the secret. So only variables meant to hold LLM keys qualify:

- names ending in `_API_KEY` (`OPENAI_API_KEY`, `DASHSCOPE_API_KEY`, `VLLM_API_KEY`…), with no setup;
- names listed in `RETORT_LLM_KEY_VARS` (comma-separated), for providers whose variables are named
  otherwise (e.g. `HF_TOKEN`).

Retort's own settings and the usual secrets of the machine never qualify, even when listed. The rule is
checked where an endpoint is saved and again where the key is read, so a row written around the service
(the admin, a fixture, an old database) still cannot leak anything.
"""

import os
import re

ALLOW_LIST_VAR = "RETORT_LLM_KEY_VARS"
_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_KEY_SUFFIX = "_API_KEY"
# Never keys, whatever they are called: Retort's settings and the common secrets of a server.
_OWN_PREFIXES = ("RETORT_", "DJANGO_", "CELERY_", "DATABASE_", "POSTGRES", "PG", "REDIS", "AWS_", "SSL_")
_OWN_NAMES = frozenset(
    {
        "SECRET_KEY",
        "DATABASE_URL",
        "CACHE_URL",
        "CELERY_BROKER_URL",
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "EMAIL_HOST_PASSWORD",
        "HOME",
        "PATH",
    }
)


class RefusedKeyVariable(ValueError):
    """The endpoint names a variable that is not allowed to be sent as an API key."""


def allowed_extra() -> frozenset[str]:
    raw = os.environ.get(ALLOW_LIST_VAR, "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def refusal(name: str) -> str:
    """Why `name` may not be used as an API key variable, or "" when it may."""
    if not _NAME.match(name):
        return f"{name!r} is not an environment variable name (capitals, digits and _, e.g. OPENAI_API_KEY)."
    if name in _OWN_NAMES or name.startswith(_OWN_PREFIXES):
        return (
            f"{name} is one of Retort's own settings or the server's secrets, never an LLM key: "
            f"put the provider's key in a variable ending in {_KEY_SUFFIX}, e.g. OPENAI_API_KEY."
        )
    if name.endswith(_KEY_SUFFIX) or name in allowed_extra():
        return ""
    return (
        f"{name} is not an API key variable: use a name ending in {_KEY_SUFFIX} (e.g. OPENAI_API_KEY), "
        f"or ask the administrator to list it in {ALLOW_LIST_VAR} where Retort runs."
    )


def read_key(name: str) -> str:
    """The key's value in this process ("" when unset). Raises RefusedKeyVariable for a name that may
    not hold a key, without reading it."""
    reason = refusal(name)
    if reason:
        raise RefusedKeyVariable(reason)
    return os.environ.get(name, "")
