"""edobs settings: one module, read from the environment, safe local defaults.

The names of the environment variables are part of the contract (DESIGN section 5).
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("EDOBS_VAR_DIR", BASE_DIR / "var"))

# Prometheus multiprocess mode (events.metrics): every process writes its samples here. Set in
# the environment at settings load, the earliest hook every process (manage.py, daphne, pytest)
# passes before anything imports prometheus_client, and inherited by the processes it starts.
EDOBS_METRICS_DIR = Path(os.environ.get("EDOBS_METRICS_DIR", "") or VAR_DIR / "metrics")
try:
    EDOBS_METRICS_DIR.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(EDOBS_METRICS_DIR)
except OSError:
    pass  # events.E056 says so, rather than a traceback from prometheus_client at every start


def envbool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name, "")
    if value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {value!r}")


def envint(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {value!r}") from None


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def local_secret_key() -> str:
    """A random key made once per checkout, for local and demo use only (check events.E002)."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        import secrets

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY_FROM_ENV = bool(os.environ.get("DJANGO_SECRET_KEY"))
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or local_secret_key()
DEBUG = envbool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = envlist("DJANGO_CSRF_TRUSTED_ORIGINS")

# Demo mode (manage.py demo, make run): local-only conveniences such as the printed login.
EDOBS_DEMO = envbool("EDOBS_DEMO", False)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "events",
    "dashboards",
    "infra",
    "sso",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files before anything else (README "Running it for real"); under daphne too: Django
    # runs this WSGI-style middleware in its ASGI handler.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the 429 page
]

# Content-Security-Policy (django-csp): scripts and styles from this site only, never inline
# (templates load static files; scripts set styles through the CSSOM), so an event string that
# slipped into the HTML still could not run. connect-src 'self' covers the site's own ws:/wss:
# sockets (checked in Chromium); ELK lays out the architecture in the page itself (no worker).
# README "Content-Security-Policy" says how to extend it.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "worker-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

ROOT_URLCONF = "edobs_site.urls"
WSGI_APPLICATION = "edobs_site.wsgi.application"
ASGI_APPLICATION = "edobs_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # the header's "alerts to X failing since ..." (read only if a page shows it)
                "dashboards.context.failing_alerts",
                "dashboards.context.controls",
            ],
        },
    },
]

DATABASE_URL = os.environ.get("DATABASE_URL", "")
if not DATABASE_URL:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{VAR_DIR / 'edobs.sqlite3'}",
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the pages read while the worker writes; the timeout rides out short write locks.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": envint("DATABASE_BUSY_TIMEOUT", 20),  # seconds a write waits for the lock
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
# Login throttling (django-axes), for the login page and the admin's: after
# EDOBS_LOGIN_FAILURE_LIMIT failures of one username from one address, even the right password
# is refused for EDOBS_LOGIN_COOLOFF_MINUTES (HTTP 429).  Counted in the database, so across
# server processes.  `manage.py axes_reset_username NAME` lifts it sooner.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("EDOBS_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("EDOBS_LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# OpenID Connect sign-in (sso/, README "Single sign-on"): on when EDOBS_OIDC_ISSUER is set, its
# endpoints and keys found by discovery; checks events.E070-E074.  Password logins stay.
EDOBS_OIDC_ISSUER = os.environ.get("EDOBS_OIDC_ISSUER", "").strip()
EDOBS_OIDC_CLIENT_ID = os.environ.get("EDOBS_OIDC_CLIENT_ID", "").strip()
EDOBS_OIDC_CLIENT_SECRET = os.environ.get("EDOBS_OIDC_CLIENT_SECRET", "").strip()
EDOBS_OIDC_TEAMS_CLAIM = os.environ.get("EDOBS_OIDC_TEAMS_CLAIM", "").strip() or "groups"
# Scopes asked for (space-separated; some providers send the teams claim only for a `groups` scope)
EDOBS_OIDC_SCOPES = os.environ.get("EDOBS_OIDC_SCOPES", "").strip() or "openid email profile"
# The login page's "Sign in with <name>" (default: the issuer's host name)
EDOBS_OIDC_NAME = os.environ.get("EDOBS_OIDC_NAME", "").strip() or (
    urlsplit(EDOBS_OIDC_ISSUER).hostname or "single sign-on"
)
if EDOBS_OIDC_ISSUER:
    AUTHENTICATION_BACKENDS.append("sso.backend.OIDCBackend")
# mozilla-django-oidc (its OIDC_OP_* endpoints come from discovery: sso.discovery)
OIDC_RP_CLIENT_ID = EDOBS_OIDC_CLIENT_ID
OIDC_RP_CLIENT_SECRET = EDOBS_OIDC_CLIENT_SECRET
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = EDOBS_OIDC_SCOPES
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10  # seconds, each request to the provider
OIDC_REDIRECT_FIELD_NAME = "next"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Times the admin (and any `|date` without a format) shows: 24-hour UTC, as on every page.
FORMAT_MODULE_PATH = ["edobs_site.formats"]
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
# WhiteNoise serves `collectstatic`'s STATIC_ROOT: hashed names (`elk.bundled.<hash>.js`) with
# `Cache-Control: max-age=315360000, public, immutable`, and their gzip copies to browsers that
# accept them (the ELK bundle: 1.65 MB, 0.48 MB gzipped).  Until collectstatic has run (a
# test's server, a fresh checkout), pages name the unhashed files, which WhiteNoise finds in the
# apps (USE_FINDERS) with a short max-age: edobs_site.staticfiles; check events.E050.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "edobs_site.staticfiles.ManifestOrAppStaticFiles"},
}
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Production (DJANGO_HTTPS=true, behind TLS): refuse unsafe settings, then secure cookies,
# HSTS and the HTTPS redirect.
PRODUCTION = envbool("DJANGO_HTTPS", False)
if PRODUCTION:
    from edobs_site.safety import production_problems

    unsafe = production_problems(
        secret_key=SECRET_KEY, key_from_env=SECRET_KEY_FROM_ENV, debug=DEBUG, demo=EDOBS_DEMO,
        allowed_hosts=ALLOWED_HOSTS, csrf_trusted_origins=CSRF_TRUSTED_ORIGINS, https=True,
    )  # fmt: skip
    if unsafe:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            "Production settings (DJANGO_HTTPS=true) refused: "
            + " ".join(f"{message} ({check_id})" for check_id, message in unsafe)
        )
    SECURE_SSL_REDIRECT = envbool("DJANGO_SECURE_SSL_REDIRECT", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = envint("DJANGO_HSTS_SECONDS", 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "events.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "edobs API",
    "DESCRIPTION": "Jobs, events, timelines and the architecture of event-driven workflows.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Several answers have a `status`: each choice set gets its own name.
    "ENUM_NAME_OVERRIDES": {
        "HealthStatusEnum": ["ok", "degraded", "down"],
        "SpanStatusEnum": ["ok", "failed", "pending"],
    },
}

# Channels: Redis across processes; in-memory only for the single-process demo and tests.
# The pub/sub layer: a group send is one Redis message per server process, fanned out to its
# sockets in memory, where the list-based core layer pushes and pops one per socket (at 100
# sockets and 200 events/s the fan-out's p99 went from 128-437 ms to 102-111 ms:
# docs/PERFORMANCE.md).  Slow sockets are bounded by the consumers' outbox
# (EDOBS_WS_QUEUE_SIZE), not by the layer's capacity.
REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_LAYER_BACKEND = "channels_redis.pubsub.RedisPubSubChannelLayer"
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": REDIS_LAYER_BACKEND, "CONFIG": {"hosts": [REDIS_URL]}},
    }
else:
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1000}}
    }
# Caches: `default` is per process; `interprocess` is seen by every server process (the replay
# throttle): Redis when REDIS_URL is set, else a table of the database (migration 0011_h2).
SHARED_CACHE_TABLE = "edobs_shared_cache"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "interprocess": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": SHARED_CACHE_TABLE,
        }
    ),
}
# Per WebSocket: frames buffered for a slow client before its oldest are dropped ("lagged"),
# and how often its Connection row (last_seen, messages_sent) is written.
EDOBS_WS_QUEUE_SIZE = envint("EDOBS_WS_QUEUE_SIZE", 256)
EDOBS_WS_TOUCH_SECONDS = envint("EDOBS_WS_TOUCH_SECONDS", 5)
# Open sockets per user, across every server process; the next one closes with 4429 (0: none).
EDOBS_WS_MAX_PER_USER = envint("EDOBS_WS_MAX_PER_USER", 20)
# Byte budgets (events.domain.budgets). A WebSocket frame, and a channel-layer message, stays under
# EDOBS_WS_FRAME_BYTES: daphne refuses to send a message over 1 MiB (the socket's sender died,
# or a snapshot closed it with 1011), so snapshots go out in chunks and a bigger event is
# trimmed.  Pages show at most EDOBS_PAGE_EVENT_BYTES of each event's JSON, API lists cut
# events over EDOBS_API_EVENT_BYTES; each links to GET /api/events/<id> for the whole event.
EDOBS_WS_FRAME_BYTES = envint("EDOBS_WS_FRAME_BYTES", 256 * 1024)
if not 16 * 1024 <= EDOBS_WS_FRAME_BYTES <= 1000 * 1024:
    raise ValueError("EDOBS_WS_FRAME_BYTES must be between 16384 and 1024000 (daphne: 1 MiB)")
EDOBS_PAGE_EVENT_BYTES = envint("EDOBS_PAGE_EVENT_BYTES", 8 * 1024)
EDOBS_API_EVENT_BYTES = envint("EDOBS_API_EVENT_BYTES", 16 * 1024)
# How often a consume_events process writes its heartbeat (events.ingest.health; 0: never).
EDOBS_HEARTBEAT_SECONDS = envint("EDOBS_HEARTBEAT_SECONDS", 5)
# Who may scrape GET /metrics: these networks (the connection's address), or a bearer token.
EDOBS_METRICS_ALLOWED_NETWORKS = envlist("EDOBS_METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1")
EDOBS_METRICS_TOKEN = os.environ.get("EDOBS_METRICS_TOKEN", "")

# edobs itself (DESIGN section 5)
EDOBS_STORE = os.environ.get("EDOBS_STORE", "orm")
EDOBS_QUEUE_NAME = os.environ.get("EDOBS_QUEUE_NAME", "edobs-events")
EDOBS_QUEUE_URL = os.environ.get("EDOBS_QUEUE_URL", "")
EDOBS_BUS_NAME = os.environ.get("EDOBS_BUS_NAME", "default")
EDOBS_RULE_SOURCES = envlist("EDOBS_RULE_SOURCES", "project")
EDOBS_TABLE_NAME = os.environ.get("EDOBS_TABLE_NAME", "edobs")
EDOBS_ACCOUNT = os.environ.get("EDOBS_ACCOUNT", "123456789012")
# Replays (events.replay.send): the only buses they may go to (names or ARNs, exactly as listed;
# check events.E025), and how many a user may start (a DRF rate; check events.E026), counted
# in the `interprocess` cache below.
EDOBS_REPLAY_BUSES = envlist("EDOBS_REPLAY_BUSES") or [EDOBS_BUS_NAME]
EDOBS_REPLAY_RATE = os.environ.get("EDOBS_REPLAY_RATE", "10/min").strip()
EDOBS_REPLAY_CACHE = "interprocess"
EDOBS_RETENTION_HOURS = envint("EDOBS_RETENTION_HOURS", 24)
# A job is stuck past this many times its state machine's p99 (events.domain.fleet).
EDOBS_STUCK_FACTOR = envint("EDOBS_STUCK_FACTOR", 2)
# Alerts (events.alerts, manage.py run_alerts; checks events.E016-E019).
EDOBS_ALERT_INTERVAL_SECONDS = envfloat("EDOBS_ALERT_INTERVAL_SECONDS", 5)
EDOBS_ALERT_LOOKBACK_MINUTES = envint("EDOBS_ALERT_LOOKBACK_MINUTES", 60)
EDOBS_ALERT_MAX_ATTEMPTS = envint("EDOBS_ALERT_MAX_ATTEMPTS", 6)
EDOBS_ALERT_BACKOFF_SECONDS = envfloat("EDOBS_ALERT_BACKOFF_SECONDS", 1)
EDOBS_ALERT_BACKOFF_MAX_SECONDS = envfloat("EDOBS_ALERT_BACKOFF_MAX_SECONDS", 300)
EDOBS_ALERT_TIMEOUT_SECONDS = envfloat("EDOBS_ALERT_TIMEOUT_SECONDS", 10)
EDOBS_ALERT_SITE_URL = os.environ.get("EDOBS_ALERT_SITE_URL", "http://127.0.0.1:8000")
# One post per rule and group window of this many seconds, naming the count and the first jobs
# (0: one post per evaluation that finds jobs; events.E060).
EDOBS_ALERT_GROUP_SECONDS = envfloat("EDOBS_ALERT_GROUP_SECONDS", 300)
# Networks webhooks may post into (CIDRs); other non-public ones are refused (SSRF; events.E020)
EDOBS_WEBHOOK_ALLOWED_NETWORKS = envlist("EDOBS_WEBHOOK_ALLOWED_NETWORKS")
# Accounts whose forwarded events the bus admits (manage.py provision; checks events.E010/E011)
EDOBS_SOURCE_ACCOUNTS = envlist("EDOBS_SOURCE_ACCOUNTS")
EDOBS_ORGANIZATION_ID = os.environ.get("EDOBS_ORGANIZATION_ID", "").strip()
AWS_ENDPOINT_URL = os.environ.get("AWS_ENDPOINT_URL", "")
AWS_DEFAULT_REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("EDOBS_LOG_LEVEL", "INFO")},
    "loggers": {
        "botocore": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # failures and lockouts; every success is in AccessLog
        "werkzeug": {"level": "WARNING"},  # the embedded emulator's access log
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}
