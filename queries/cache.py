"""Result cache and freshness rules (PostHog's staleness thresholds per interval).

Results live in Django's `results` cache (files under VAR_DIR by default, so they survive a
restart; Redis with REDIS_URL) under the runner's cache key, as JSON-ready response dicts with
their `last_refresh`.
"""
from datetime import datetime, timedelta
from typing import Optional

from django.core.cache import caches
from django.utils.dateparse import parse_datetime

from . import clock, conf

THRESHOLDS = {
    "default": {
        None: timedelta(hours=6),
        "minute": timedelta(minutes=5),
        "hour": timedelta(hours=1),
        "day": timedelta(hours=6),
        "week": timedelta(days=1),
        "month": timedelta(days=2),
    },
    "lazy": {
        None: timedelta(hours=12),
        "minute": timedelta(minutes=15),
        "hour": timedelta(hours=2),
        "day": timedelta(hours=12),
        "week": timedelta(days=1),
        "month": timedelta(days=2),
    },
}
# A result computed this long after the end of its date range can never go stale.
CLOSED_RANGE_MARGIN = timedelta(seconds=10)


def get(key: str) -> Optional[dict]:
    value = caches["results"].get(key)
    return value if isinstance(value, dict) and value.get("last_refresh") else None


def store(key: str, response: dict) -> None:
    caches["results"].set(key, response, timeout=conf.cache_ttl_seconds())


def target_age(interval: Optional[str], last_refresh: datetime, *, lazy: bool = False) -> Optional[datetime]:
    thresholds = THRESHOLDS["lazy" if lazy else "default"]
    if interval not in thresholds:
        return None
    return last_refresh + thresholds[interval]


def is_stale(interval: Optional[str], date_to: Optional[datetime], last_refresh: datetime, *, lazy: bool = False) -> bool:
    if date_to is not None and date_to < last_refresh - CLOSED_RANGE_MARGIN:
        return False
    max_age = target_age(interval, last_refresh, lazy=lazy)
    return max_age is not None and clock.now() > max_age


def last_refresh_of(response: dict) -> Optional[datetime]:
    value = response.get("last_refresh")
    return parse_datetime(value) if isinstance(value, str) else value
