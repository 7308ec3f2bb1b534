"""Cancelling an async query stops its statement on ClickHouse, in-process (chDB) and over HTTP.

The job's queries run under a query id (chDB: their `log_comment`), which `DELETE /query/:id/`
kills with `KILL QUERY` through another connection; the job then ends as cancelled and writes
nothing back. The statement here runs for minutes unless it is killed.
"""
import threading

import pytest
from sqlglot import exp

from events.clickhouse.client import QUERY_WAS_CANCELLED, ClickHouseError
from queries import jobs
from queries.runners.base import QueryCancelled, QueryTimeout
from queries.runners.trends import TrendsQueryRunner
from queries.sql.engine import Params

QUERY = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}],
         "dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-02"}}
ENDLESS = "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) % 7 = 3"
RUNNING = ("SELECT count() FROM system.processes WHERE query LIKE '%sipHash64(number)%' "
           "AND query NOT LIKE '%system.processes%'")


@pytest.fixture(params=["chdb", "http"])
def transport(request, transactional_db, settings, monkeypatch):
    # Jobs on this process's thread pool: a Celery worker process cannot open this process's chDB.
    monkeypatch.setattr(jobs, "uses_celery", lambda: False)
    settings.QUERY_ASYNC_TIMEOUT_SECONDS = 120  # were the kill lost, the job would still end
    return request.getfixturevalue("clickhouse" if request.param == "chdb" else "clickhouse_http")


def wait_for(condition, tries=400):
    for _ in range(tries):
        if condition():
            return True
        threading.Event().wait(0.05)
    return False


def test_cancel_kills_the_running_statement(transport, client, team, monkeypatch):
    outcome, finished = {}, threading.Event()

    def endless(self):
        try:
            return self.run_sql(exp.maybe_parse(ENDLESS, dialect="clickhouse"), Params())
        except BaseException as error:
            outcome["error"] = error
            raise
        finally:
            finished.set()

    monkeypatch.setattr(TrendsQueryRunner, "calculate", endless)
    started = client.post(f"/api/projects/{team.id}/query/", {"query": QUERY, "refresh": "force_async",
                                                              "client_query_id": "endless"}, format="json")
    assert started.status_code == 202
    assert wait_for(lambda: transport.query(RUNNING).rows == [(1,)])

    assert client.delete(f"/api/projects/{team.id}/query/endless/").json() == {"message": "Query cancelled"}
    assert finished.wait(60), "the statement was not stopped"
    assert isinstance(outcome["error"], QueryCancelled) and not isinstance(outcome["error"], QueryTimeout)
    killed = outcome["error"].__cause__.__cause__  # QueryCancelled <- DatabaseError <- ClickHouse's own error
    assert isinstance(killed, ClickHouseError) and killed.code == QUERY_WAS_CANCELLED
    assert wait_for(lambda: transport.query(RUNNING).rows == [(0,)])
    jobs._threads.drain()
    assert client.get(f"/api/projects/{team.id}/query/endless/").status_code == 404  # nothing written back
    assert transport.query("SELECT 1 AS one").rows == [(1,)]  # the transport still serves


def test_a_kill_the_api_did_not_ask_for_answers_504_not_400(transport, client, team, monkeypatch):
    """An operator's KILL QUERY (or a server stopping a statement) is no fault of the query: the
    blocking request answers as PostgreSQL's "canceling statement" does, with the timeout error."""
    monkeypatch.setattr(TrendsQueryRunner, "calculate",
                        lambda self: self.run_sql(exp.maybe_parse(ENDLESS, dialect="clickhouse"), Params()))
    response = {}
    request = threading.Thread(target=lambda: response.setdefault(
        "it", client.post(f"/api/projects/{team.id}/query/", {"query": QUERY, "refresh": "force_blocking"}, format="json")))
    request.start()
    assert wait_for(lambda: transport.query(RUNNING).rows == [(1,)])
    transport.command("KILL QUERY WHERE query LIKE '%sipHash64(number)%' AND query NOT LIKE '%KILL%' ASYNC")
    request.join(60)
    assert response["it"].status_code == 504
    assert response["it"].json() == {"type": "server_error", "code": "timeout",
                                     "detail": "The query took too long to compute.", "attr": None}
