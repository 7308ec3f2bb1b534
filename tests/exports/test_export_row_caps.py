"""Row caps (spec/vocabulary.md §9.3): the query API answers 100 SQL rows by default and 50,000 at
most; an export holds up to 300,000 rows, by default as many."""
import pytest

from queries.execution import build_runner
from queries.limit_context import LimitContext
from tests.insights.conftest import make_insight
from tests.queries.events import events

from .test_exports_api import CSV, content, export, frozen_now, parsed_csv, url  # noqa: F401

pytestmark = pytest.mark.django_db

SQL = {"kind": "HogQLQuery", "query": "select event, distinct_id from events order by distinct_id"}


@pytest.fixture
def many_events(team):
    events(team, *[("$pageview", f"user-{n:03d}", "2024-01-02 10:00") for n in range(150)])


def test_the_query_api_answers_100_rows_by_default(client, team, many_events):
    body = client.post(f"/api/projects/{team.id}/query/", {"query": SQL}, format="json").json()
    assert (len(body["results"]), body["hasMore"], body["limit"]) == (100, True, 100)


def test_a_sql_export_holds_every_row(client, url, team, many_events):
    rows = parsed_csv(content(client, url, export(client, url, export_format=CSV, export_context={"source": SQL})))
    assert rows[0] == ["event", "distinct_id"] and len(rows) == 1 + 150
    assert rows[-1] == ["$pageview", "user-149"]


def test_a_sql_insight_export_holds_every_row(client, url, team, many_events):
    insight = make_insight(team, name="All views", query={"kind": "DataVisualizationNode", "source": SQL})
    assert len(client.get(f"/api/projects/{team.id}/insights/{insight.id}/", {"refresh": "blocking"}).json()["result"]) == 100
    rows = parsed_csv(content(client, url, export(client, url, export_format=CSV, insight=insight.id)))
    assert len(rows) == 1 + 150


@pytest.mark.parametrize("context, written, expected", [
    (LimitContext.QUERY, "", "LIMIT 100"),
    (LimitContext.QUERY, " limit 60000", "LIMIT 50000"),
    (LimitContext.QUERY, " limit 20", "LIMIT 20"),
    (LimitContext.EXPORT, "", "LIMIT 300000"),
    (LimitContext.EXPORT, " limit 400000", "LIMIT 300000"),
    (LimitContext.EXPORT, " limit 60000", "LIMIT 60000"),
])
def test_limits_by_context(team, context, written, expected):
    runner = build_runner(team, {"kind": "HogQLQuery", "query": f"select event from events{written}"})
    runner.limit_context = context
    assert runner.calculate()["hogql"].endswith(expected)


def test_contexts_have_their_own_cache_entries(team):
    runner = build_runner(team, SQL)
    usual = runner.cache_key()
    runner.limit_context = LimitContext.EXPORT
    assert runner.cache_key() != usual
