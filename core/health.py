"""Health endpoints for orchestrators: `/_health` (the process answers) and `/_readyz`.

Answered by a middleware ahead of sessions, authentication and the host check, so probes by a
pod's IP address work and cost no database session. `/_readyz` is 503 only when the database (or
the ClickHouse server holding the events, when one is configured) is unreachable: Redis is a
cache and a coordinator, so without it the service still serves (reported as `"degraded"`).
"""
import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse

logger = logging.getLogger(__name__)

HEALTH_PATH = "/_health"
READY_PATH = "/_readyz"


def _check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "not reachable" to a probe
        logger.warning("readiness: database unavailable: %s", exc)
        return "unavailable"
    return "ok"


def _check_redis() -> str:
    from django_redis import get_redis_connection

    try:
        get_redis_connection("default").ping()
    except Exception as exc:
        logger.warning("readiness: redis unavailable: %s", exc)
        return "unavailable"
    return "ok"


def _check_clickhouse() -> str:
    from events.clickhouse import get_client

    try:
        get_client().query("SELECT 1")
    except Exception as exc:
        logger.warning("readiness: clickhouse unavailable: %s", exc)
        return "unavailable"
    return "ok"


def readiness() -> tuple[int, dict]:
    checks = {"database": _check_database()}
    if settings.EVENTS_ENGINE == "clickhouse":  # a server; chDB runs in this process
        checks["clickhouse"] = _check_clickhouse()
    if settings.REDIS_URL:
        checks["redis"] = _check_redis()
    if checks["database"] != "ok" or checks.get("clickhouse", "ok") != "ok":
        return 503, {"status": "unavailable", "checks": checks}
    if any(value != "ok" for value in checks.values()):
        return 200, {"status": "degraded", "checks": checks}
    return 200, {"status": "ok", "checks": checks}


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == HEALTH_PATH:
            return self._answer(request, 200, {"status": "ok"})
        if request.path == READY_PATH:
            return self._answer(request, *readiness())
        return self.get_response(request)

    @staticmethod
    def _answer(request, status: int, body: dict):
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse(
                {"type": "invalid_request", "code": "method_not_allowed", "detail": f'Method "{request.method}" not allowed.', "attr": None},
                status=405,
            )
            response["Allow"] = "GET, HEAD"
            return response
        response = JsonResponse(body, status=status)
        response["Cache-Control"] = "no-store"
        return response
