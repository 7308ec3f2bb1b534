"""Outages of the database or the broker answer 503 with Retry-After, never a bare 500.

A request that finds the database unreachable (restart, failover, a stale connection, SQLite
locked past its busy timeout) gets `{"type": "server_error", "code": "database_unavailable"}` so
clients and SDKs retry. Its transaction was rolled back, so nothing of it was written.
"""
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from rest_framework import status
from rest_framework.exceptions import APIException

RETRY_AFTER_SECONDS = 5

# SQLite reports every failure as OperationalError; only these mean "try again later".
_SQLITE_TRANSIENT = ("database is locked", "unable to open database", "disk i/o error")


def _is_query_cancel(cause) -> bool:
    try:
        from psycopg.errors import QueryCanceled
    except ImportError:  # psycopg is an optional dependency
        return False
    return isinstance(cause, QueryCanceled)


class BackendUnavailable(Exception):
    """Raised by a client of another data store (the ClickHouse server) that could not be reached."""


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database could not be reached (as opposed to a bad statement)."""
    if isinstance(exc, BackendUnavailable):
        return True
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if _is_query_cancel(cause):
        return False  # a statement timeout or a cancel: the engine's business, not an outage
    if cause is not None and type(cause).__module__.startswith("psycopg"):
        return True
    message = str(exc).lower()
    return any(text in message for text in _SQLITE_TRANSIENT)


def is_broker_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says Redis (the Celery broker, the coordination store) could not be reached."""
    try:
        from kombu.exceptions import OperationalError as KombuOperationalError
        from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
    except ImportError:
        return False
    return isinstance(exc, (KombuOperationalError, RedisConnectionError, RedisTimeoutError))


class DatabaseUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is temporarily unavailable. Please retry shortly."
    default_code = "database_unavailable"
    default_type = "server_error"
    wait = RETRY_AFTER_SECONDS


class BrokerUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Background queries are temporarily unavailable. Please retry shortly, or use a blocking refresh."
    default_code = "service_unavailable"
    default_type = "server_error"
    wait = RETRY_AFTER_SECONDS


def as_unavailable(exc: BaseException) -> APIException | None:
    """The 503 an infrastructure failure maps to, or None when `exc` is something else."""
    if is_database_unavailable(exc):
        return DatabaseUnavailable()
    if is_broker_unavailable(exc):
        return BrokerUnavailable()
    return None


def unavailable_response(exc: APIException) -> JsonResponse:
    body = {"type": exc.default_type, "code": exc.default_code, "detail": str(exc.detail), "attr": None}
    response = JsonResponse(body, status=exc.status_code)
    response["Retry-After"] = str(exc.wait)
    return response
