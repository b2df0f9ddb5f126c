"""Session, cookie and password settings in production mode, read from a fresh manage.py process (the mode
is chosen at start-up). `check --deploy` passing is tests/config/test_run_modes.py's; this checks the values
themselves, including those the deploy check does not look at (session length, hashers, validators)."""

import json

from tests.config.test_run_modes import PRODUCTION, manage

READ = """
import json
from django.conf import settings as s
print(json.dumps({name: getattr(s, name) for name in %r}, default=str))
"""
NAMES = [
    "DEBUG",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_AGE",
    "SESSION_EXPIRE_AT_BROWSER_CLOSE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_SAMESITE",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_SSL_REDIRECT",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "X_FRAME_OPTIONS",
    "PASSWORD_HASHERS",
    "AUTH_PASSWORD_VALIDATORS",
    "AUTHENTICATION_BACKENDS",
    "RETORT_LOGIN_MAX_FAILURES",
]
STRONG_HASHERS = ("Argon2PasswordHasher", "PBKDF2PasswordHasher", "ScryptPasswordHasher", "BCryptSHA256PasswordHasher")
WEAK_HASHERS = ("MD5PasswordHasher", "UnsaltedMD5PasswordHasher", "UnsaltedSHA1PasswordHasher", "SHA1PasswordHasher")


def _settings(tmp_path, **overrides) -> dict:
    result = manage("shell", "-c", READ % NAMES, env_overrides={**PRODUCTION, **overrides}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def problems(s: dict) -> list[str]:
    """What is wrong with the production settings `s`; [] when all is well."""
    found = []
    wanted = {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY",
    }
    found += [f"{name} is {s[name]!r}, not {value!r}" for name, value in wanted.items() if s[name] != value]
    found += [
        f"{n} is {s[n]!r}" for n in ("SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE") if s[n] not in ("Lax", "Strict")
    ]
    if s["SECURE_HSTS_SECONDS"] < 365 * 24 * 3600:
        found.append(f"HSTS lasts {s['SECURE_HSTS_SECONDS']} s, under a year")
    if not 15 * 60 <= s["SESSION_COOKIE_AGE"] <= 24 * 3600:
        found.append(f"a session lasts {s['SESSION_COOKIE_AGE']} s (want 15 minutes to a day)")
    first = s["PASSWORD_HASHERS"][0].rsplit(".", 1)[-1]
    if first not in STRONG_HASHERS:
        found.append(f"passwords are hashed with {first}")
    found += [f"{h} still verifies old hashes" for h in s["PASSWORD_HASHERS"] if h.rsplit(".", 1)[-1] in WEAK_HASHERS]
    validators = {v["NAME"].rsplit(".", 1)[-1]: v.get("OPTIONS", {}) for v in s["AUTH_PASSWORD_VALIDATORS"]}
    for name in ("UserAttributeSimilarityValidator", "CommonPasswordValidator", "NumericPasswordValidator"):
        if name not in validators:
            found.append(f"no {name}")
    if validators.get("MinimumLengthValidator", {"min_length": 0}).get("min_length", 8) < 8:
        found.append("passwords may be shorter than 8 characters")
    if s["AUTHENTICATION_BACKENDS"] != ["apps.core.login_limits.RateLimitedModelBackend"]:
        found.append(f"sign-in goes through {s['AUTHENTICATION_BACKENDS']}, not the rate-limited backend")
    if not 1 <= s["RETORT_LOGIN_MAX_FAILURES"] <= 20:
        found.append(f"login lockout after {s['RETORT_LOGIN_MAX_FAILURES']} failures")
    return found


def test_production_session_cookie_and_password_settings(tmp_path):
    assert problems(_settings(tmp_path)) == []


def test_the_checks_catch_weak_settings(tmp_path):
    """The control: the same checks over a production process told to keep sessions for two weeks and to
    drop HSTS to a day, and over a hand-weakened copy of its settings."""
    weak = _settings(tmp_path, SESSION_COOKIE_AGE="1209600", SECURE_HSTS_SECONDS="86400")
    assert problems(weak) == [
        "HSTS lasts 86400 s, under a year",
        "a session lasts 1209600 s (want 15 minutes to a day)",
    ]
    weak.update(
        SESSION_COOKIE_SAMESITE="None",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        AUTH_PASSWORD_VALIDATORS=[],
        AUTHENTICATION_BACKENDS=["django.contrib.auth.backends.ModelBackend"],
    )
    assert len(problems(weak)) == 10
