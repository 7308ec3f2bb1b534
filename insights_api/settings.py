"""Settings, configured from the environment (12-factor). See the README for every variable."""
import ipaddress
import os
import secrets
from pathlib import Path

import dj_database_url
import dj_email_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)


def _secret_key() -> str:
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Development: generate once and keep it, so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = os.environ.get("SITE_URL", f"http://127.0.0.1:{os.environ.get('PORT', '8000')}")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "accounts",
    "activity",
    "events",
    "queries",
    "insights",
    "sharing",
    "alerts",
    "insight_variables",
    "exports",
    "cohorts",
    "actions",
    "groups",
]

MIDDLEWARE = [
    "core.proxy.TrustedProxyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.health.HealthCheckMiddleware",
    "core.exceptions.ErrorBodyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.coalescing.QueryCoalescingMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "events.middleware.CaptureBarrierMiddleware",
]

ROOT_URLCONF = "insights_api.urls"
WSGI_APPLICATION = "insights_api.wsgi.application"
APPEND_SLASH = False

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
            ]
        },
    }
]

# --- Behind a reverse proxy (core/proxy.py) -----------------------------------------------------
# Addresses or networks of the proxies in front of the server, e.g. "10.0.0.0/8,127.0.0.1". Off
# (empty) by default: X-Forwarded-* headers are then not used for the client address or scheme.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {exc}") from exc
# HTTPS as the trusted proxy reports it (Secure cookies, absolute URLs); the header is dropped
# from every other peer.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES else None
USE_X_FORWARDED_HOST = env_bool("USE_X_FORWARDED_HOST", False)
# Browser logins over HTTPS only (production behind TLS): the session and CSRF cookies get `Secure`.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        # A persistent connection is pinged before reuse, so a database restart costs only the
        # requests in flight at that moment (answered 503, see core/faults.py).
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Fail fast while the database is away instead of hanging a worker.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = int(os.environ.get("DATABASE_CONNECT_TIMEOUT", "3"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers and one writer work at once; IMMEDIATE transactions plus a busy
    # timeout make concurrent writers from several server workers wait instead of failing
    # with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Event engine (events/clickhouse) ---------------------------------------------------------
# Where events live and insights compute: the Django database by default; ClickHouse in this
# process ("chdb", data under CLICKHOUSE_DATA_DIR) or a server at CLICKHOUSE_URL ("clickhouse").
CLICKHOUSE_URL = os.environ.get("CLICKHOUSE_URL", "")
EVENTS_ENGINE = os.environ.get("EVENTS_ENGINE", "clickhouse" if CLICKHOUSE_URL else "").lower()
if EVENTS_ENGINE not in ("", "chdb", "clickhouse"):
    raise ImproperlyConfigured(f"EVENTS_ENGINE must be empty, 'chdb' or 'clickhouse', not {EVENTS_ENGINE!r}")
if EVENTS_ENGINE == "clickhouse" and not CLICKHOUSE_URL:
    raise ImproperlyConfigured("EVENTS_ENGINE=clickhouse needs CLICKHOUSE_URL (http://user:pass@host:8123/db)")
CLICKHOUSE_DATA_DIR = Path(os.environ.get("CLICKHOUSE_DATA_DIR") or VAR_DIR / "clickhouse")
# chDB: capture is acknowledged once its rows are fsynced to a spool next to the data, and a
# thread writes the spool into ClickHouse in big groups (events/clickhouse/spool.py).
CLICKHOUSE_SPOOL = os.environ.get("CLICKHOUSE_SPOOL", "1").lower() not in ("0", "false", "no", "off")
# Capture spools validated events and the spool's flusher resolves their persons, a group at a
# time (as PostHog's capture hands events to Kafka); off: capture resolves persons itself.
CLICKHOUSE_SPOOL_PERSONS = env_bool("CLICKHOUSE_SPOOL_PERSONS", True)
# ... in a process of its own (its own GIL: the server's process keeps capture and ClickHouse).
CLICKHOUSE_SPOOL_PERSONS_PROCESS = env_bool("CLICKHOUSE_SPOOL_PERSONS_PROCESS", True)
CLICKHOUSE_SPOOL_DIR = os.environ.get("CLICKHOUSE_SPOOL_DIR", "")  # default: "<CLICKHOUSE_DATA_DIR>-spool"
CLICKHOUSE_SPOOL_FLUSH_SECONDS = float(os.environ.get("CLICKHOUSE_SPOOL_FLUSH_SECONDS", "0.5"))
CLICKHOUSE_SPOOL_FLUSH_EVENTS = int(os.environ.get("CLICKHOUSE_SPOOL_FLUSH_EVENTS", "20000"))
CLICKHOUSE_SPOOL_MAX_BYTES = int(os.environ.get("CLICKHOUSE_SPOOL_MAX_BYTES", str(64 * 1024 * 1024)))
CLICKHOUSE_SPOOL_MAX_AGE_SECONDS = float(os.environ.get("CLICKHOUSE_SPOOL_MAX_AGE_SECONDS", "60"))
# Replicated tables behind a Distributed table, created ON CLUSTER this name (a server only).
CLICKHOUSE_CLUSTER = os.environ.get("CLICKHOUSE_CLUSTER", "")

# --- Cache, Celery ------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Periodic jobs: Celery beat with REDIS_URL; a thread of the server with chDB (core/periodic.py).
ALERT_CHECK_INTERVAL_SECONDS = float(os.environ.get("ALERT_CHECK_INTERVAL_SECONDS", "300"))
COHORT_CALCULATION_INTERVAL_SECONDS = float(os.environ.get("COHORT_CALCULATION_INTERVAL_SECONDS", "60"))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "insights"),
            # A dead Redis must fail fast: every request reads the throttles and the result cache.
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": float(os.environ.get("REDIS_CONNECT_TIMEOUT", "0.5")),
                "SOCKET_TIMEOUT": float(os.environ.get("REDIS_SOCKET_TIMEOUT", "1")),
            },
        }
    }
    CACHES["results"] = CACHES["default"]  # one Redis for everything
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = False
    # Alert checks (alerts/tasks.py). Without Redis, run `manage.py check_alerts` from cron instead.
    CELERY_BEAT_SCHEDULE = {
        "check-alerts": {
            "task": "alerts.tasks.check_due_alerts_task",
            "schedule": ALERT_CHECK_INTERVAL_SECONDS,
        },
        # Expired export files (exports/tasks.py). Without Redis, run `manage.py delete_expired_exports` from cron.
        "delete-expired-exports": {"task": "exports.delete_expired_exports", "schedule": 3600.0},
        # Dynamic cohorts older than 15 minutes (cohorts/tasks.py). Without Redis, run `manage.py calculate_cohorts` from cron.
        "calculate-cohorts": {
            "task": "cohorts.tasks.calculate_due_cohorts_task",
            "schedule": COHORT_CALCULATION_INTERVAL_SECONDS,
        },
    }
else:
    # Query results survive a restart of the embedded default: files under VAR_DIR, shared by
    # workers. Counters, throttles and job status stay in process memory, whose increments are atomic.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "insights"},
        "results": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.environ.get("RESULTS_CACHE_DIR") or str(VAR_DIR / "results"),
            "OPTIONS": {"MAX_ENTRIES": int(os.environ.get("RESULTS_CACHE_MAX_ENTRIES", "20000"))},
        },
    }
    CELERY_BROKER_URL = "memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_SERIALIZER = "json"
# Redis is a cache and a coordinator, never a point of failure: while it is unreachable, cache
# reads miss and writes are dropped (logged), so throttles fail open and results are computed.
DJANGO_REDIS_IGNORE_EXCEPTIONS = True
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
# Publishing an async query to a dead broker gives up after about a second (answered 503).
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2}
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}

# Identical concurrent query/insight requests are computed once (core/coalescing.py).
QUERY_COALESCING_ENABLED = env_bool("QUERY_COALESCING_ENABLED", True)
QUERY_COALESCING_MAX_WAIT_SECONDS = float(os.environ.get("QUERY_COALESCING_MAX_WAIT_SECONDS", "60"))

# --- Auth ------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [{"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"}]
LOGIN_REDIRECT_URL = "/api/"
LOGOUT_REDIRECT_URL = "/api/"
PERSONAL_API_KEY_LAST_USED_INTERVAL_SECONDS = 3600

# --- Internationalisation, static files -------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve straight from the apps when collectstatic has not run

# --- REST framework ----------------------------------------------------------------------------
RATE_LIMIT_ENABLED = env_bool("RATE_LIMIT_ENABLED", True)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.PersonalAPIKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "core.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "burst": os.environ.get("API_BURST_RATE", "240/minute"),
        "sustained": os.environ.get("API_SUSTAINED_RATE", "1200/hour"),
        # Insight analyze and suggestions (PostHog's AI endpoint throttles).
        "llm_analytics_summarization_burst": "50/minute",
        "llm_analytics_summarization_sustained": "200/hour",
        "llm_analytics_summarization_daily": "500/day",
    },
}

# --- Alert notifications (alerts/notifications.py) ------------------------------------------------
# Email through Django's email framework: EMAIL_URL (e.g. smtp://user:pass@host:587/?tls=True,
# submission://..., console://) or the EMAIL_HOST/PORT/... variables. Neither = no email is sent.
EMAIL_URL = os.environ.get("EMAIL_URL", "")
if EMAIL_URL:
    globals().update({name: value for name, value in dj_email_url.parse(EMAIL_URL).items() if value is not None})
elif os.environ.get("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = os.environ["EMAIL_HOST"]
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"  # not configured: alerts list no email targets
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", globals().get("DEFAULT_FROM_EMAIL", "alerts@localhost"))
# Every firing or errored alert is also POSTed as JSON to these URLs (comma-separated).
ALERT_WEBHOOK_URLS = env_list("ALERT_WEBHOOK_URLS", "")
ALERT_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("ALERT_WEBHOOK_TIMEOUT_SECONDS", "10"))
ALERT_WEBHOOK_RETRIES = int(os.environ.get("ALERT_WEBHOOK_RETRIES", "3"))
ALERT_WEBHOOK_BACKOFF_SECONDS = float(os.environ.get("ALERT_WEBHOOK_BACKOFF_SECONDS", "2"))

# Optional OpenAI-compatible chat endpoint for insight analysis and suggestions (insights/llm.py),
# used when all three are set, e.g. LLM_API_BASE=https://api.openai.com/v1.
LLM_API_BASE = os.environ.get("LLM_API_BASE", "")
LLM_API_KEY = os.environ.get("LLM_API_KEY", "")
LLM_MODEL = os.environ.get("LLM_MODEL", "")
LLM_TIMEOUT_SECONDS = float(os.environ.get("LLM_TIMEOUT_SECONDS", "30"))

SPECTACULAR_SETTINGS = {
    "TITLE": "PostHog-compatible Insights API",
    "DESCRIPTION": "Self-hostable reimplementation of PostHog's Insights REST API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/",
    "ENUM_NAME_OVERRIDES": {
        # Dashboard restriction and privilege levels share the values 21/37: name each set once.
        "EffectiveRestrictionLevelEnum": "insights.serializers.RESTRICTION_LEVELS",
        "EffectivePrivilegeLevelEnum": "insights.serializers.PRIVILEGE_LEVELS",
        "ActionStepMatchingEnum": "actions.models.MATCHING_OPTIONS",
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "core.openapi.posthog_tags"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # sqlglot warns at every rendering of a ClickHouse array subscript (1-based) that it converted it.
    "loggers": {"sqlglot": {"level": "ERROR"}},
}
