from datetime import datetime, timezone

import pytest


@pytest.fixture(params=["django", "clickhouse"])
def events_engine(request):
    """Runs a test on the Django database's engine (SQLite or PostgreSQL) and on ClickHouse (chDB),
    with the same expected results. Modules opt in with `pytest.mark.usefixtures("events_engine")`
    (listed before the fixtures that write events, so that those write to the engine under test)."""
    if request.param == "clickhouse":
        return request.getfixturevalue("clickhouse")
    return None


@pytest.fixture
def clock(monkeypatch):
    """Pins the query engine's "now": `clock("2020-01-10 12:00")` (UTC unless an offset is given)."""

    def set_now(value: str) -> datetime:
        moment = datetime.fromisoformat(value)
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        monkeypatch.setattr("queries.clock.now", lambda: moment)
        return moment

    return set_now


@pytest.fixture
def run_query(client, team):
    """POST a query to /api/projects/:id/query/ and return the response (any status)."""

    def post(query: dict, **body):
        return client.post(f"/api/projects/{team.id}/query/", {"query": query, **body}, format="json")

    return post


@pytest.fixture
def trends(run_query):
    """Compute a TrendsQuery (refresh=force_blocking) and return its `results`."""

    def compute(series=None, **fields):
        query = {"kind": "TrendsQuery", "series": series or [{"kind": "EventsNode", "event": "$pageview"}], **fields}
        response = run_query(query, refresh="force_blocking")
        assert response.status_code == 200, response.json()
        return response.json()["results"]

    return compute
