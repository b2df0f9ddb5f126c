"""Retort settings: one module, driven by the environment.

Embedded default (no DATABASE_URL / CELERY_BROKER_URL): SQLite and a file-system Celery broker under
var/, DEBUG on, a fixed development secret. Production: PostgreSQL and Redis/RabbitMQ from the
environment, DEBUG off, SECRET_KEY and ALLOWED_HOSTS required.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.modes import BASE_DIR, current_mode, embedded_broker_dir, sqlite_path, var_dir


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no, on/off).")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    return [item.strip() for item in value.split(",") if item.strip()] if value else default


RUN_MODE = current_mode()
VAR_DIR = var_dir()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", RUN_MODE.is_embedded)

_DEV_SECRET = "embedded-mode-only-not-secret-7d1b0c1e9a"  # noqa: S105 - refused in production below
SECRET_KEY = os.environ.get("SECRET_KEY", "" if not RUN_MODE.is_embedded else _DEV_SECRET)
if not SECRET_KEY or (not RUN_MODE.is_embedded and SECRET_KEY == _DEV_SECRET):
    raise ImproperlyConfigured("Production mode needs SECRET_KEY set to a long random string.")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"] if RUN_MODE.is_embedded else []
)
if not RUN_MODE.is_embedded and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Production mode needs ALLOWED_HOSTS (comma-separated host names).")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "apps.core",
    "apps.datasets",
    "apps.llm",
    "apps.experiments",
    "apps.judging",
    "apps.reviews",
    "apps.training",
    "apps.console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.core.middleware.LoginRequiredExceptApiMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.core.context_processors.run_mode",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------------
if RUN_MODE.is_embedded:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": sqlite_path(),
            # A file, not memory, so that worker processes started by integration tests share it.
            "TEST": {"NAME": VAR_DIR / "test.sqlite3"},
            # WAL lets the web server read while the worker writes; the timeout rides out short locks.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
else:
    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["DATABASE_URL"], conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60), conn_health_checks=True
        )
    }
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://…); got another engine.")
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache: progress and heartbeats of running jobs. Written outside their database transactions, so it
# must be shared by every web and worker process: Redis in production, a folder under var/ embedded. ---
_cache_url = os.environ.get("CACHE_URL") or (
    os.environ["CELERY_BROKER_URL"]
    if not RUN_MODE.is_embedded and os.environ["CELERY_BROKER_URL"].startswith(("redis://", "rediss://"))
    else ""
)
if not RUN_MODE.is_embedded and not _cache_url:
    raise ImproperlyConfigured("With a non-Redis broker, set CACHE_URL to a Redis URL for job progress and heartbeats.")
if _cache_url:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": VAR_DIR / "cache",
        }
    }

# --- auth -----------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Django's model backend, refusing a (user name, address) pair locked out by too many failed sign-ins.
AUTHENTICATION_BACKENDS = ["apps.core.login_limits.RateLimitedModelBackend"]
RETORT_LOGIN_MAX_FAILURES = env_int("RETORT_LOGIN_MAX_FAILURES", 5)  # 0 turns the limit off
RETORT_LOGIN_WINDOW_S = env_int("RETORT_LOGIN_WINDOW_S", 15 * 60)
RETORT_LOGIN_LOCKOUT_S = env_int("RETORT_LOGIN_LOCKOUT_S", 15 * 60)
# A login lasts a working day, not Django's two weeks: a laptop left logged in holds operator rights for
# hours, not weeks. The session cookie is out of reach of page scripts; both cookies stay off other sites'
# forms (Lax) and, in production, off plain HTTP (the security section below). The CSRF cookie stays
# readable: every page carries the same token in its HTML, so HttpOnly would protect nothing.
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_ROOT = Path(os.environ.get("RETORT_MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Large uploads stream to disk in chunks; only small ones stay in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = None
RETORT_MAX_UPLOAD_BYTES = env_int("RETORT_MAX_UPLOAD_BYTES", 4 * 1024**3)
RETORT_IMPORT_MAX_RECORD_BYTES = env_int("RETORT_IMPORT_MAX_RECORD_BYTES", 1024 * 1024)
# A running job whose heartbeat is older than this is taken to have lost its worker and is re-queued.
RETORT_STALE_AFTER_S = env_int("RETORT_STALE_AFTER_S", 120)
# Functions that find work a dead worker left behind and queue it again (run at worker start and each minute).
RETORT_RECOVERERS = ["apps.datasets.services.import_job_recover_stale"]

# --- security (production) --------------------------------------------------------------------------
if not RUN_MODE.is_embedded:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # The preload flag does nothing until the domain is submitted to the browsers' list.
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Error reports (the DEBUG page, error e-mails) hide LLM keys by value as well as secrets by name.
DEFAULT_EXCEPTION_REPORTER_FILTER = "apps.core.error_reports.KeyHidingFilter"

# --- REST API ---------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.core.permissions.IsViewer"],
    "DEFAULT_SCHEMA_CLASS": "apps.core.api_schema.RetortAutoSchema",  # drf-spectacular's, with the error answers
    "DEFAULT_PAGINATION_CLASS": "apps.core.api_pagination.IdCursor",
    # DRF's three, with its JSON parser answering a body nested too deeply with a 400, not a 500.
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.api_parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.core.api_errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Retort API",
    "DESCRIPTION": "Distil a teacher LLM into a student model, with people in the loop.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["apps.core.permissions.IsViewer"],
    # Swagger UI and Redoc served from our own static files (drf-spectacular-sidecar): the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Path parameters as Django's converters match them, so a value outside these never reaches a view.
    "PATH_CONVERTER_OVERRIDES": {
        "int": {"type": "integer", "minimum": 0},
        "str": {"type": "string", "pattern": "^[^/]+$"},
        "slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"},
    },
    # One name per choice set that several models' fields share a field name with (status, kind).
    "ENUM_NAME_OVERRIDES": {
        "ExperimentStatusEnum": "apps.experiments.models.core.Experiment.Status",
        "RoundStatusEnum": "apps.experiments.models.core.Round.Status",
        "StageRunStatusEnum": "apps.experiments.models.core.StageRun.Status",
        "GpuJobStatusEnum": "apps.training.models.JobStatus",
        "BackgroundJobStatusEnum": "apps.datasets.models.ImportJob.Status",  # imports and exports alike
        "CallStatusEnum": "apps.llm.models.LLMCall.Status",
        "ReviewTaskStatusEnum": "apps.reviews.models.ReviewTask.Status",
        "ReviewKindEnum": "apps.reviews.kinds.Kind",
        "ArtifactKindEnum": "apps.training.models.Artifact.Kind",
        "JudgmentKindEnum": "apps.judging.models.Judgment.Kind",
    },
}

# --- Celery -----------------------------------------------------------------------------------------
if RUN_MODE.is_embedded:
    _broker = embedded_broker_dir()
    for _sub in ("queue", "processed", "control"):
        (_broker / _sub).mkdir(parents=True, exist_ok=True)
    import config.broker  # noqa: F401 - registers the retortfs transport: kombu's file broker, written atomically

    CELERY_BROKER_URL = "retortfs://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "queue"),
        "data_folder_out": str(_broker / "queue"),
        "processed_folder": str(_broker / "processed"),
        "control_folder": str(_broker / "control"),
        "store_processed": False,
        # How often an idle consumer looks for new message files (tests that hop between processes lower it).
        "polling_interval": float(os.environ.get("RETORT_BROKER_POLL_S") or 1.0),
    }
else:
    CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
    # Redis re-delivers an unacknowledged task after the visibility timeout; it must outlast the
    # longest training job or a running job would be started a second time.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 7 * 24 * 3600),
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"refusal_without_traceback": {"()": "apps.core.log_filters.RefusalWithoutTraceback"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["refusal_without_traceback"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's default config gives "django" a console handler of its own as well; through the root
        # handler alone each record is written once.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
    },
}
