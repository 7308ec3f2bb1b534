"""Computing one insight never fails the request that lists or retrieves it (issue 13)."""
import logging

import pytest
from django.db import DatabaseError

from insights.models import Insight
from queries import api as queries_api

from .conftest import SQL_QUERY, TRENDS_QUERY, make_insight

pytestmark = pytest.mark.django_db

DEPTH = 150


def nested(depth: int) -> str:
    return "(" * depth + "1" + ")" * depth


def deep_breakdown_insight(team) -> Insight:
    """Saved straight to the database, as an insight stored before any parser limit existed."""
    source = {**TRENDS_QUERY["source"], "breakdownFilter": {"breakdown_type": "hogql", "breakdown": nested(DEPTH)}}
    return make_insight(team, name="Deep", query={**TRENDS_QUERY, "source": source})


def assert_failed(body: dict, insight_id: int) -> dict:
    status = body["query_status"]
    assert (body["result"], body["is_cached"]) == (None, False)
    assert (status["error"], status["complete"], status["insight_id"]) == (True, True, insight_id)
    assert status["error_message"]
    return status


def test_a_deeply_nested_breakdown_does_not_fail_the_list(client, base, team):
    good = make_insight(team, name="Good", query=SQL_QUERY)
    deep = deep_breakdown_insight(team)
    response = client.get(base, {"refresh": "force_blocking"})
    assert response.status_code == 200
    by_id = {row["id"]: row for row in response.json()["results"]}
    assert by_id[good.id]["result"] == [[0]] and by_id[good.id]["query_status"] is None
    assert_failed(by_id[deep.id], deep.id)
    retrieved = client.get(f"{base}{deep.id}/", {"refresh": "blocking"})
    assert retrieved.status_code == 200
    assert_failed(retrieved.json(), deep.id)


@pytest.mark.parametrize(
    "failure, code",
    [
        (RecursionError("maximum recursion depth exceeded"), "query_too_complex"),
        (ValueError("Exceeds the limit (4300 digits) for integer string conversion"), "calculation_error"),
        (DatabaseError('relation "secret_table" does not exist'), "calculation_error"),
        (TimeoutError("timed out"), "calculation_error"),
        (KeyError("results"), "calculation_error"),
    ],
)
def test_any_engine_failure_becomes_that_insights_query_status(client, base, team, monkeypatch, caplog, failure, code):
    good = make_insight(team, name="Good", query=SQL_QUERY)
    bad = make_insight(team, name="Bad", query={**SQL_QUERY, "source": {"kind": "HogQLQuery", "query": "select 2"}})
    real = queries_api.execute_query

    def failing_for_bad(team, query, **kwargs):
        if kwargs.get("insight_id") == bad.id:
            raise failure
        return real(team, query, **kwargs)

    monkeypatch.setattr(queries_api, "execute_query", failing_for_bad)
    with caplog.at_level(logging.INFO, logger="insights.results"):
        response = client.get(base, {"refresh": "blocking"})
        retrieved = client.get(f"{base}{bad.id}/")
    assert response.status_code == 200 and retrieved.status_code == 200
    by_id = {row["id"]: row for row in response.json()["results"]}
    assert by_id[good.id]["result"] == [[0]]
    for body in (by_id[bad.id], retrieved.json()):
        status = assert_failed(body, bad.id)
        assert status["error_code"] == code
        assert str(failure) not in status["error_message"]  # internals are logged, never sent
    assert f"Insight {bad.id}:" in caplog.text
    if code == "calculation_error":
        assert str(failure) in caplog.text  # with its traceback


def test_a_query_the_engine_refuses_keeps_its_reason(client, base, team):
    insight = make_insight(team, query={**SQL_QUERY, "source": {"kind": "HogQLQuery", "query": "select nope from nowhere"}})
    response = client.get(f"{base}{insight.id}/", {"refresh": "blocking"})
    assert response.status_code == 200
    status = assert_failed(response.json(), insight.id)
    assert "nowhere" in status["error_message"]
