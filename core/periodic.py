"""Periodic jobs on a thread of the server process, for chDB.

With EVENTS_ENGINE=chdb only the server process may open the events' data directory, so neither
a Celery worker (beat's schedule) nor a management command run from cron can calculate cohorts or
check alerts while the server runs. That one process (`make run` forces one worker) runs them on
a daemon thread instead, at Celery beat's intervals. Other set-ups keep Celery beat (REDIS_URL) or
cron (`manage.py calculate_cohorts`, `manage.py check_alerts`).
"""
import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.db import close_old_connections, connections

from .background import uses_celery

logger = logging.getLogger(__name__)


def calculate_due_cohorts() -> None:
    from cohorts.calculation import calculate_cohort, due_cohort_ids

    for cohort_id in due_cohort_ids():
        calculate_cohort(cohort_id)


def check_due_alerts() -> None:
    from alerts.checks import check_alert, delete_old_checks, due_alert_ids

    for alert_id in due_alert_ids():
        check_alert(alert_id)
    delete_old_checks()


@dataclass
class Job:
    name: str
    interval: Callable[[], float]  # seconds, read from settings when the schedule starts
    run: Callable[[], None]


JOBS = [
    Job("calculate-cohorts", lambda: settings.COHORT_CALCULATION_INTERVAL_SECONDS, calculate_due_cohorts),
    Job("check-alerts", lambda: settings.ALERT_CHECK_INTERVAL_SECONDS, check_due_alerts),
]

_started = False
_lock = threading.Lock()
_stop = threading.Event()


def needed() -> bool:
    return settings.EVENTS_ENGINE == "chdb" and not uses_celery()


def run_job(job: Job) -> None:
    """One run of `job` with fresh database connections; a failure is logged, never raised."""
    close_old_connections()
    try:
        job.run()
    except Exception:
        logger.exception("periodic job %s failed", job.name)
    finally:
        connections.close_all()


def _loop(jobs: list[Job]) -> None:
    next_run = {job.name: time.monotonic() + job.interval() for job in jobs}
    while not _stop.wait(max(0.0, min(next_run.values()) - time.monotonic())):
        for job in jobs:
            if time.monotonic() >= next_run[job.name]:
                run_job(job)
                next_run[job.name] = time.monotonic() + job.interval()


def start_in_server() -> bool:
    """Start the schedule in this server process when it is the only one that can run it (once)."""
    global _started
    with _lock:
        if _started or not needed():
            return False
        _started = True
        _stop.clear()
    threading.Thread(target=_loop, args=(JOBS,), name="periodic-jobs", daemon=True).start()
    return True


def stop() -> None:
    """End the schedule's thread (tests); `start_in_server` may start it again."""
    global _started
    with _lock:
        _stop.set()
        _started = False
