"""Project settings, read from the environment.

With nothing set, the embedded default runs: a SQLite file under RECSITE_DATA_DIR,
tasks run in-process, a local-memory cache. Set DATABASE_URL and REDIS_URL for
production (and the test suite): PostgreSQL, Redis as cache and Celery broker.
"""

import os
import secrets
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DATA_DIR = Path(os.environ.get("RECSITE_DATA_DIR", BASE_DIR / "var"))


def _embedded_secret_key() -> str:
    """A per-installation key kept beside the SQLite file, so sessions survive restarts."""
    path = DATA_DIR / "secret_key"
    if not path.exists():
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY") or _embedded_secret_key()
DEBUG = env_bool("DEBUG", default=False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "csp",
    "axes",
    "tracking",
    "tracking.flagged",  # events dropped as bots', kept apart (tracking/flagged)
    "profiles",
    "recommend",
    "demo",  # the demo shop at /shop/ (scripts/demo)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "recsite.security.ContentSecurityPolicyMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # the admin login's brute-force lockout
    # A view's database or cache outage answers 503 with Retry-After, not 500.
    "recsite.middleware.ServiceUnavailableMiddleware",
]

ROOT_URLCONF = "recsite.urls"
WSGI_APPLICATION = "recsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "recsite" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=int(os.environ.get("CONN_MAX_AGE", "600")),
            # A health check costs a query per request; off unless asked for.
            conn_health_checks=env_bool("CONN_HEALTH_CHECKS", default=False),
        )
    }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "recsite.sqlite3",
            # WAL lets the demo server read while an import writes. IMMEDIATE: a transaction
            # takes the write lock when it begins, so concurrent requests (collect draining
            # in-process) wait for it instead of failing with "database is locked".
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "timeout": 20,
                        "transaction_mode": "IMMEDIATE"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery -------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "recsite.cache.RedisCache",  # Django's, reusing its Redis client
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "recsite",
        }
    }
    CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", REDIS_URL)
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://localhost/"  # kombu warns of a missing host otherwise
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# A message taken by a worker that died is delivered again after this many seconds; it
# must exceed the longest task (training). A lost ingest message is recovered by the
# outbox sweeper long before it (README: Faults and durability).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600")),
}

# --- Internationalisation ---------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Only the built browser files: static/tracker/ also holds their sources and node_modules.
STATICFILES_DIRS = [
    ("tracker/dist", path) for path in [BASE_DIR / "static" / "tracker" / "dist"] if path.is_dir()
] + [("recommend", BASE_DIR / "static" / "recommend")]  # the widget's CSS and JS

# --- REST framework ---------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tracking.api_errors.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    # Trusted proxies in front (X-Forwarded-For): with none it is ignored, so a client
    # cannot dodge the per-IP throttle (or the admin lockout) by forging it. One when a
    # proxy is named for HTTPS (SECURE_PROXY_SSL_HEADER), else every client would share
    # the proxy's address and its budget.
    "NUM_PROXIES": int(os.environ.get("NUM_PROXIES") or
                       (1 if os.environ.get("SECURE_PROXY_SSL_HEADER") else 0)),
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "recsite API",
    "DESCRIPTION": "Event collection, consent and recommendations for embedded sites.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc assets come from the installed sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- CORS: the allowed origins are per site, decided in tracking.cors -------
CORS_URLS_REGEX = r"^/api/v1/(collect|consent|recommendations|items/[^/]+/similar)$"
CORS_ALLOW_HEADERS = ["content-type"]
CORS_ALLOW_METHODS = ["GET", "POST", "OPTIONS"]
CORS_PREFLIGHT_MAX_AGE = 86400
# The tracker reads Retry-After on a 429 or 503 to back off as asked.
CORS_EXPOSE_HEADERS = ["Retry-After"]

# --- recsite (documented in tracking/conf.py) -------------------------------
RECSITE = {
    key.removeprefix("RECSITE_"): value
    for key, value in os.environ.items()
    if key.startswith("RECSITE_") and key not in {"RECSITE_DATA_DIR"}
}

# --- Security (README: Security) ---------------------------------------------
# HTTPS_ONLY=1 in production: HTTPS redirect, secure cookies, HSTS (each can be set alone).
HTTPS_ONLY = env_bool("HTTPS_ONLY")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS_ONLY)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", HTTPS_ONLY)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS") or
                          (31_536_000 if HTTPS_ONLY else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS_ONLY)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS_ONLY)
if os.environ.get("SECURE_PROXY_SSL_HEADER"):  # e.g. X-Forwarded-Proto, set by the proxy
    SECURE_PROXY_SSL_HEADER = (
        "HTTP_" + os.environ["SECURE_PROXY_SSL_HEADER"].upper().replace("-", "_"), "https")
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"

# Scripts from this server or with the request's nonce only: no inline script, no eval.
# recsite.security relaxes style-src where markup has inline styles (admin, API docs).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:", "https:"],  # item images live on the shop's hosts
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# Admin login brute-force protection (django-axes): 5 failures lock the address, and the
# user name, for 15 minutes. Counted in Redis when there is one, else in the database.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("AXES_COOLOFF_MINUTES", "15")) / 60  # hours
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "recsite.security.client_ip"
AXES_HANDLER = ("axes.handlers.cache.AxesCacheHandler" if REDIS_URL
                else "axes.handlers.database.AxesDatabaseHandler")
AXES_DISABLE_ACCESS_LOG = True  # no log of every admin login and its address

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}
