"""Execution modes (PostHog's ExecutionMode) and the one parser of the clients' `refresh` value."""
from enum import StrEnum
from typing import Any


class ExecutionMode(StrEnum):
    """How a query may use the result cache and whether it computes now, in the background or never.

    Each value is the `refresh` string that selects it.
    """

    FORCE_CACHE = "force_cache"
    """Cache only, never compute: the cached result, fresh or stale, or a cache miss (PostHog's
    CACHE_ONLY_NEVER_CALCULATE). The default of the insights endpoints."""

    BLOCKING = "blocking"
    """A fresh cached result, else compute now (RECENT_CACHE_CALCULATE_BLOCKING_IF_STALE)."""

    FORCE_BLOCKING = "force_blocking"
    """Compute now whatever is cached (CALCULATE_BLOCKING_ALWAYS); `refresh=true` asks for it."""

    ASYNC = "async"
    """A fresh cached result; a stale one is returned while a background job refreshes it; a miss
    starts the job and answers with its status (RECENT_CACHE_CALCULATE_ASYNC_IF_STALE)."""

    ASYNC_EXCEPT_ON_CACHE_MISS = "async_except_on_cache_miss"
    """As `async`, except that a cache miss computes now
    (RECENT_CACHE_CALCULATE_ASYNC_IF_STALE_AND_BLOCKING_ON_MISS)."""

    LAZY_ASYNC = "lazy_async"
    """As `async`, with the longer (lazy) staleness thresholds (EXTENDED_CACHE_CALCULATE_ASYNC_IF_STALE)."""

    FORCE_ASYNC = "force_async"
    """Always start a background job; the answer is only its status (CALCULATE_ASYNC_ALWAYS)."""


_TRUE = {"true", "1", "yes", ""}
_BY_VALUE = {mode.value: mode for mode in ExecutionMode}


def resolve_refresh(value: Any) -> ExecutionMode:
    """`refresh` as clients send it (query string or JSON body), read as PostHog reads it: true/1/yes/''
    (any case) mean force_blocking; a mode's exact name selects it; anything else (false/0/no,
    absence, an unknown value) means the default, force_cache. An unknown value is not an error."""
    if value is None or value is False:
        return ExecutionMode.FORCE_CACHE
    if value is True:
        return ExecutionMode.FORCE_BLOCKING
    text = str(value)
    if text.lower() in _TRUE:
        return ExecutionMode.FORCE_BLOCKING
    return _BY_VALUE.get(text, ExecutionMode.FORCE_CACHE)
