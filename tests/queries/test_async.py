"""Async queries for real: jobs run on the in-process executor (no REDIS_URL) or on a Celery worker
subprocess against Redis (REDIS_URL set: the PostgreSQL + Redis run), then are polled over HTTP.
"""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from sqlglot import exp, parse_one

from queries import jobs
from queries.runners.trends import TrendsQueryRunner
from queries.sql.engine import Params, PostgresEngine, SQLiteEngine
from tests.queries.events import events

ROOT = Path(__file__).resolve().parents[2]
QUERY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-02"},
}
USES_CELERY = bool(settings.REDIS_URL)
thread_executor_only = pytest.mark.skipif(USES_CELERY, reason="patches code inside the job, which a Celery worker process cannot see")


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, django_db_blocker):
    """A real `celery worker --pool=solo` on the test database, when REDIS_URL is set."""
    if not USES_CELERY:
        yield None
        return
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        pytest.skip("a worker process cannot see an in-memory SQLite test database")
    url = f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": settings.REDIS_URL}
    worker = subprocess.Popen(
        [str(Path(sys.executable).parent / "celery"), "-A", "insights_api", "worker", "--pool=solo", "--without-gossip",
         "--without-mingle", "--without-heartbeat", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    yield worker
    worker.terminate()
    worker.wait(timeout=30)


@pytest.fixture
def jobs_run(celery_worker, transactional_db):
    """Jobs dispatch at commit and their worker must see the data: use committed transactions."""
    if celery_worker is not None:
        # Each test starts by flushing the Redis database, broker routing included; declare it again.
        from insights_api.celery import app

        with app.connection_for_write() as broker:
            for queue in app.amqp.queues.values():
                queue(broker.default_channel).declare()
    return celery_worker


def drain_thread_pool():
    """Wait for every job of the in-process executor to finish (a new pool starts on demand)."""
    jobs._threads.drain()


def poll(client, team, query_id, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/projects/{team.id}/query/{query_id}/")
        if response.status_code != 202 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def test_async_query_completes_and_fills_the_cache(jobs_run, client, team):
    events(team, ("$pageview", "a", "2020-01-01 10:00"), ("$pageview", "b", "2020-01-02 10:00"), ("$pageview", "b", "2020-01-02 11:00"))
    started = client.post(f"/api/projects/{team.id}/query/", {"query": QUERY, "refresh": "force_async", "client_query_id": "job1"}, format="json")
    assert started.status_code == 202
    assert started.json()["query_status"]["complete"] is False

    done = poll(client, team, "job1")
    assert done.status_code == 200
    status = done.json()["query_status"]
    assert status["complete"] is True and status["error"] is False and status["error_message"] is None
    assert status["pickup_time"] and status["end_time"]
    assert status["results"]["results"][0]["data"] == [1, 2]
    assert status["results"]["is_cached"] is False

    cached = client.post(f"/api/projects/{team.id}/query/", {"query": QUERY}, format="json").json()
    assert cached["is_cached"] is True and cached["last_refresh"] == status["results"]["last_refresh"]


def test_async_mode_on_a_cache_miss_then_the_cache_key_as_job_id(jobs_run, client, team):
    events(team, ("$pageview", "a", "2020-01-01 10:00"))
    started = client.post(f"/api/projects/{team.id}/query/", {"query": QUERY, "refresh": "async"}, format="json").json()
    assert started["query_status"]["id"] == started["cache_key"]
    assert poll(client, team, started["cache_key"]).status_code == 200
    assert client.post(f"/api/projects/{team.id}/query/", {"query": QUERY, "refresh": "async"}, format="json").json()["is_cached"] is True


def test_failed_job_reports_its_error(jobs_run, client, team):
    too_long = {**QUERY, "interval": "minute", "dateRange": {"date_from": "2020-01-01", "date_to": "2020-02-01"}}
    client.post(f"/api/projects/{team.id}/query/", {"query": too_long, "refresh": "force_async", "client_query_id": "bad"}, format="json")
    response = poll(client, team, "bad")
    assert response.status_code == 400
    status = response.json()["query_status"]
    assert status["complete"] is True and status["error"] is True and status["results"] is None
    assert status["error_message"] == "The date range has more than 10000 minute intervals. Use a shorter date range or a longer interval."


def test_cancel_right_after_enqueue_leaves_nothing_behind(jobs_run, client, team):
    events(team, ("$pageview", "a", "2020-01-01 10:00"))
    client.post(f"/api/projects/{team.id}/query/", {"query": QUERY, "refresh": "force_async", "client_query_id": "c1"}, format="json")
    message = client.delete(f"/api/projects/{team.id}/query/c1/").json()["message"]
    # wait until the worker has handled c1: on Celery (one solo worker, FIFO) by running a job after it
    if jobs_run is None:
        drain_thread_pool()
    else:
        client.post(f"/api/projects/{team.id}/query/", {"query": {**QUERY, "interval": "hour"}, "refresh": "force_async",
                                                        "client_query_id": "c2"}, format="json")
        assert poll(client, team, "c2").status_code == 200
    after = client.get(f"/api/projects/{team.id}/query/c1/")
    if message == "Query cancelled":
        assert after.status_code == 404
    else:  # the worker was faster than the cancel
        assert message == "Query already complete" and after.status_code == 200


@thread_executor_only
def test_unexpected_failure_hides_its_message(jobs_run, client, team, monkeypatch):
    def explode(self):
        raise RuntimeError("internal detail")

    monkeypatch.setattr(TrendsQueryRunner, "calculate", explode)
    client.post(f"/api/projects/{team.id}/query/", {"query": QUERY, "refresh": "force_async", "client_query_id": "boom"}, format="json")
    response = poll(client, team, "boom")
    assert response.status_code == 500
    status = response.json()["query_status"]
    assert status["error"] is True and status["complete"] is True and status["error_message"] is None


@thread_executor_only
def test_cancelled_running_job_never_writes_back(jobs_run, client, team, monkeypatch):
    running, release = threading.Event(), threading.Event()
    original = TrendsQueryRunner.calculate

    def slow(self):
        running.set()
        release.wait(30)
        return original(self)

    monkeypatch.setattr(TrendsQueryRunner, "calculate", slow)
    client.post(f"/api/projects/{team.id}/query/", {"query": QUERY, "refresh": "force_async", "client_query_id": "slow"}, format="json")
    assert running.wait(30)
    assert client.get(f"/api/projects/{team.id}/query/slow/").json()["query_status"]["pickup_time"] is not None
    assert client.delete(f"/api/projects/{team.id}/query/slow/").json() == {"message": "Query cancelled"}
    release.set()
    drain_thread_pool()  # the job finishes its computation...
    assert client.get(f"/api/projects/{team.id}/query/slow/").status_code == 404  # ...and writes nothing back


# --- Aborting SQL that is already running ------------------------------------------------------


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite progress handler")
def test_sqlite_statement_is_interrupted_by_a_cancel(db):
    from django.db import OperationalError

    endless = parse_one("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c", read="sqlite")
    with pytest.raises(OperationalError, match="interrupted"):
        SQLiteEngine().execute(endless, Params(), cancel_check=lambda: True)
    with pytest.raises(OperationalError, match="interrupted"):
        SQLiteEngine().execute(endless, Params(), timeout=0.05)
    assert SQLiteEngine().execute(parse_one("SELECT 1"), Params()) == [(1,)]  # the handler is removed afterwards


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL backend cancel")
def test_postgres_statement_is_cancelled_from_another_connection(transactional_db):
    from django.db import OperationalError, connections

    sleep = exp.select(exp.Anonymous(this="pg_sleep", expressions=[exp.Literal.number(30)]))
    with pytest.raises(OperationalError, match="statement timeout"):
        PostgresEngine().execute(sleep, Params(), timeout=0.1)

    backend, outcome = [], []

    def run():
        engine = PostgresEngine()
        backend.append(engine.backend_id())
        try:
            engine.execute(sleep, Params())
        except OperationalError as error:
            outcome.append(str(error))
        finally:
            connections.close_all()

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not backend and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # let the statement start
    PostgresEngine().cancel_backend(backend[0])
    worker.join(30)
    assert outcome and "canceling statement due to user request" in outcome[0]
