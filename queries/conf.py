"""Settings of the query engine: Django settings first, then environment variables, then defaults."""
import os

from django.conf import settings


def _setting(name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return float(value)


def query_timeout_seconds() -> float:
    """Longest a blocking query may run before it is aborted (504)."""
    return _setting("QUERY_TIMEOUT_SECONDS", 120)


def async_timeout_seconds() -> float:
    """Longest an async job may run; a job silent for longer is reported as failed (crashed worker)."""
    return _setting("QUERY_ASYNC_TIMEOUT_SECONDS", 600)


def async_status_ttl_seconds() -> int:
    """How long an async query status (and its results) can be polled (PostHog: 20 minutes)."""
    return int(_setting("QUERY_ASYNC_STATUS_TTL_SECONDS", 20 * 60))


def cache_ttl_seconds() -> int:
    """How long computed results stay in the cache (served stale by `force_cache` until then)."""
    return int(_setting("QUERY_CACHE_TTL_SECONDS", 7 * 24 * 3600))


def async_threads() -> int:
    """Worker threads of the in-process executor used when there is no Celery broker (no REDIS_URL)."""
    return int(_setting("QUERY_ASYNC_THREADS", 2))
