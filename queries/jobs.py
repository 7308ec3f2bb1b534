"""Async query jobs and their `query_status` (PostHog's QueryStatusManager).

A job is identified by its query id (the client's `client_query_id`, else the cache key) and
described by a status dict stored in Django's cache under `query_async:<team_id>:<query_id>`.
Jobs run on the Celery worker when REDIS_URL is set, else on an in-process thread pool.

Guarantees: every job ends `complete` (with `results`, or `error` and `error_message`), is
removed by a cancel, or — if its worker died — is reported as failed once it has been silent
longer than QUERY_ASYNC_TIMEOUT_SECONDS. A cancelled or superseded job never writes a status.
"""
import logging
import uuid
from datetime import datetime, timedelta
from typing import Optional

from django.core.cache import cache
from django.db import transaction
from django.utils.dateparse import parse_datetime
from rest_framework.exceptions import APIException, NotFound

from core.background import ThreadRunner, uses_celery
from core.faults import BrokerUnavailable, is_broker_unavailable

from . import clock, conf
from .runners.base import QueryCancelled, response_value
from .sql.engine import get_engine

logger = logging.getLogger(__name__)

CRASHED_MESSAGE = "The query did not finish within {} seconds; its worker may have stopped. Please retry."


def status_key(team_id: int, query_id: str) -> str:
    return f"query_async:{team_id}:{query_id}"


def _backend_key(team_id: int, query_id: str) -> str:
    return f"query_async:{team_id}:{query_id}:backend"


def _load(team_id: int, query_id: str) -> Optional[dict]:
    value = cache.get(status_key(team_id, query_id))
    return value if isinstance(value, dict) else None


def _store(status: dict) -> None:
    ttl = conf.async_status_ttl_seconds()
    status["expiration_time"] = response_value(clock.now() + timedelta(seconds=ttl))
    cache.set(status_key(status["team_id"], status["id"]), status, timeout=ttl)


def _time(value) -> Optional[datetime]:
    return parse_datetime(value) if isinstance(value, str) else value


def new_status(team_id: int, query_id: str, *, insight_id=None, dashboard_id=None) -> dict:
    return {
        "id": query_id,
        "query_async": True,
        "team_id": team_id,
        "insight_id": insight_id,
        "dashboard_id": dashboard_id,
        "error": False,
        "complete": False,
        "error_message": None,
        "results": None,
        "pickup_time": None,
        "start_time": response_value(clock.now()),
        "end_time": None,
        "expiration_time": None,
        "task_id": None,
        "query_progress": None,
        "labels": None,
    }


def get_status(team_id: int, query_id: str) -> dict:
    """The job's status; NotFound (404) when unknown, expired or cancelled."""
    status = _load(team_id, query_id)
    if status is None:
        raise NotFound(f"Query {query_id} not found for team {team_id}")
    if not status["complete"]:
        started = _time(status.get("pickup_time")) or _time(status.get("start_time"))
        timeout = conf.async_timeout_seconds()
        if started and clock.now() > started + timedelta(seconds=timeout):
            status.update(complete=True, error=True, error_message=CRASHED_MESSAGE.format(int(timeout)),
                          end_time=response_value(clock.now()))
            _store(status)
    return status


def running_status(team_id: int, query_id: str) -> Optional[dict]:
    """The status of a job still running for this id, else None (attached to cached responses)."""
    try:
        status = get_status(team_id, query_id)
    except NotFound:
        return None
    return None if status["complete"] else status


def enqueue(team, query: dict, query_id: str, *, refresh_requested: bool, user_id=None, insight_id=None, dashboard_id=None) -> dict:
    existing = _load(team.id, query_id)
    if existing is not None and not refresh_requested:
        return get_status(team.id, query_id)
    status = new_status(team.id, query_id, insight_id=insight_id, dashboard_id=dashboard_id)
    status["task_id"] = uuid.uuid4().hex
    _store(status)
    arguments = (team.id, query_id, query, user_id, status["task_id"])
    # A broker that cannot take the job is the client's 503 (core.faults), not a silent loss.
    transaction.on_commit(lambda: _dispatch(*arguments), robust=not uses_celery())
    return status


def cancel(team_id: int, query_id: str) -> str:
    status = _load(team_id, query_id)
    if status is not None and status["complete"]:
        return "Query already complete"
    if status is not None:
        if uses_celery() and status.get("task_id"):
            try:
                from .tasks import process_query_task

                process_query_task.app.control.revoke(status["task_id"])
            except Exception:  # the broker being unreachable must not block a cancel
                logger.warning("Could not revoke query task %s", status["task_id"], exc_info=True)
    backend = cache.get(_backend_key(team_id, query_id)) if status is not None else None
    # The status goes first: a job whose statement is killed must already see itself cancelled
    # (else it would report the kill as its error).
    cache.delete_many([status_key(team_id, query_id), _backend_key(team_id, query_id)])
    if backend is not None:
        get_engine().cancel_backend(backend)
    return "Query cancelled"


# --- Running ----------------------------------------------------------------------------------


def run_job(team_id: int, query_id: str, query: dict, user_id, task_id: str) -> None:
    """The worker side: compute, then record the outcome unless the job was cancelled meanwhile."""
    from accounts.models import Team

    from . import execution

    status = _load(team_id, query_id)
    if status is None or status["complete"] or status.get("task_id") != task_id:
        return
    status["pickup_time"] = response_value(clock.now())
    _store(status)

    def superseded() -> bool:
        current = _load(team_id, query_id)
        return current is None or current.get("task_id") != task_id

    try:
        backend = get_engine().backend_id()
        if backend is not None:
            cache.set(_backend_key(team_id, query_id), backend, timeout=conf.async_status_ttl_seconds())
        team = Team.objects.get(pk=team_id)
        results = execution.compute(team, query, cancel_check=superseded, timeout=conf.async_timeout_seconds(),
                                    insight_id=status.get("insight_id"), dashboard_id=status.get("dashboard_id"))
        status.update(error=False, results=results)
    except QueryCancelled:
        return
    except APIException as error:
        status.update(error=True, results=None, error_message=_message(error))
    except Exception:
        # Unexpected failures are not shown to users (PostHog hides them too); GET answers 500.
        logger.exception("Async query %s of team %s failed", query_id, team_id)
        status.update(error=True, results=None, error_message=None)
    finally:
        cache.delete(_backend_key(team_id, query_id))
    if superseded():
        return
    status.update(complete=True, end_time=response_value(clock.now()))
    _store(status)


def _message(error: APIException) -> str:
    detail = error.detail
    while isinstance(detail, (list, dict)) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail)


_threads = ThreadRunner("query-async", conf.async_threads)


def _dispatch(team_id: int, query_id: str, query: dict, user_id, task_id: str) -> None:
    if uses_celery():
        from .tasks import process_query_task

        try:
            process_query_task.apply_async(args=(team_id, query_id, query, user_id, task_id), task_id=task_id)
        except Exception as exc:
            if not is_broker_unavailable(exc):
                raise
            cache.delete(status_key(team_id, query_id))
            raise BrokerUnavailable() from exc
    else:
        _threads.submit(run_job, team_id, query_id, query, user_id, task_id)
