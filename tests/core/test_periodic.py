"""The server's own schedule of periodic jobs, used with chDB (no Celery worker or cron can read events)."""
import time

import pytest

from cohorts.models import Cohort
from core import periodic
from tests.queries.events import person

pytestmark = pytest.mark.django_db(transaction=True)

FILTERS = {"properties": {"type": "AND", "values": [{"type": "person", "key": "plan", "operator": "exact", "value": "pro"}]}}


def test_needed_only_with_chdb_and_no_celery(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.REDIS_URL, settings.EVENTS_ENGINE = "", "chdb"
    assert periodic.needed() is True
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"  # Celery never runs with chDB: still the server's job
    assert periodic.needed() is True
    settings.EVENTS_ENGINE = ""  # Celery beat, or cron without Redis
    assert periodic.needed() is False
    settings.EVENTS_ENGINE = "clickhouse"
    assert periodic.needed() is False


def test_the_cohort_job_calculates_due_cohorts(team):
    person(team, "a", properties={"plan": "pro"})
    person(team, "b", properties={"plan": "free"})
    cohort = Cohort.objects.create(team=team, name="c", filters=FILTERS)
    periodic.run_job(periodic.JOBS[0])
    cohort.refresh_from_db()
    assert (cohort.count, cohort.version, cohort.is_calculating) == (1, 1, False)


def test_the_schedule_runs_jobs_again_after_a_failure(settings, monkeypatch, caplog):
    settings.REDIS_URL, settings.EVENTS_ENGINE = "", "chdb"
    runs = []

    def flaky():
        runs.append(time.monotonic())
        if len(runs) == 1:
            raise RuntimeError("boom")

    monkeypatch.setattr(periodic, "JOBS", [periodic.Job("flaky", lambda: 0.05, flaky)])
    try:
        assert periodic.start_in_server() is True
        assert periodic.start_in_server() is False  # one schedule per process
        deadline = time.monotonic() + 30
        while len(runs) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        periodic.stop()
    assert len(runs) >= 3
    assert "periodic job flaky failed" in caplog.text
