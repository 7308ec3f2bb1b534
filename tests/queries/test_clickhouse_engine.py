"""The ClickHouse engine's own guarantees: safe literals, materialized columns read transparently
with the same values, the events primary key reached through the sources, timeouts and cancellation."""
import json
import threading
import uuid
from datetime import datetime, timezone

import pytest
import sqlglot
from django.db import DatabaseError
from sqlglot import exp

from events.clickhouse.materialized import materialize, materialized_columns, property_text_sql
from events.clickhouse.mirror import insert_events, write_overrides
from queries.sql.context import SQLContext
from queries.sql.engine import EngineTimeout, Params, get_engine
from queries.sql.engine.clickhouse import QUERY_SETTINGS, ClickHouseEngine
from tests.factories import make_team
from tests.queries.events import events, person

pytestmark = pytest.mark.django_db

HOSTILE = ["it's", "back\\slash", "\\'; DROP TABLE events; --", "new\nline\ttab\r", "nul\0byte", "{p0:String}", "%s %(p0)s",
           "é😀", "", "'", "\\", "\"quoted\""]


def run(engine, select, params):
    return engine.execute(select, params, timeout=10)


def test_get_engine_is_clickhouse_only_when_enabled(clickhouse, settings):
    assert isinstance(get_engine(), ClickHouseEngine)
    from django.db import connection

    assert not isinstance(get_engine(connection), ClickHouseEngine)  # SQL over Django's own tables
    settings.EVENTS_ENGINE = ""
    assert not isinstance(get_engine(), ClickHouseEngine)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_strings_round_trip_as_literals(clickhouse, value):
    engine, params = get_engine(), Params()
    select = exp.select(params.add(value), exp.EQ(this=params.add(value), expression=params.add(value)))
    assert run(engine, select, params) == [(value, True)]


def test_hostile_keys_and_values_read_as_property_text_sql(clickhouse, team):
    properties = {key: f"v:{key}" for key in HOSTILE} | {"n": 5, "f": 2.5, "t": True, "nul": None, "o": {"a": [1]}}
    insert_events([(uuid.uuid4(), team.id, "e", "d", json.dumps(properties), datetime(2020, 1, 1, tzinfo=timezone.utc), None, "",
                    datetime(2020, 1, 1, tzinfo=timezone.utc))])
    engine = get_engine()
    context = SQLContext(engine, team)
    keys = [*HOSTILE, "n", "f", "t", "nul", "o", "missing"]
    select = exp.select(*[context.event_property(key) for key in keys]).from_(context.events_table()).where(context.team_filter())
    [row] = run(engine, select, context.params)
    # THE definition (events.clickhouse.materialized), run on the same row.
    expected = clickhouse.query("SELECT " + ", ".join(property_text_sql(key) for key in keys) + " FROM events").rows[0]
    assert row == expected
    assert row[:len(HOSTILE)] == tuple(f"v:{key}" for key in HOSTILE)
    assert row[len(HOSTILE):] == ("5", "2.5", "true", None, '{"a":[1]}', None)


def test_materialized_columns_are_read_instead_of_properties(clickhouse, team, trends):
    key = "plan'\\x"
    materialize(clickhouse, key)
    assert key in materialized_columns(clickhouse) and "$browser" in materialized_columns(clickhouse)
    person(team, "u1")
    events(team, *[("$pageview", "u1", "2020-01-02 10:00", {"$browser": browser, key: plan})
                   for browser, plan in (("Chrome", "pro"), ("Safari", 7), ("Chrome", None))])
    engine = get_engine()
    context = SQLContext(engine, team)
    select = exp.select(context.event_property("$browser"), context.event_property(key),
                        context.event_property_number(key)).from_(context.events_table()).where(context.team_filter())
    sql, _ = engine.render(select, context.params)
    assert "JSONExtract" not in sql and "`mat_$browser`" in sql or '"mat_$browser"' in sql
    assert sorted(run(engine, select, context.params), key=str) == sorted(
        [("Chrome", "pro", None), ("Safari", "7", 7.0), ("Chrome", None, None)], key=str)
    results = trends(breakdownFilter={"breakdown": "$browser", "breakdown_type": "event"},
                     dateRange={"date_from": "2020-01-02", "date_to": "2020-01-02"})
    assert {result["breakdown_value"]: result["count"] for result in results} == {"Chrome": 2, "Safari": 1}


def test_filters_on_team_event_and_time_reach_the_events_primary_key(clickhouse, team):
    insert_events([(uuid.uuid4(), team.id, "$pageview", "d", "{}", datetime(2020, 1, 2, tzinfo=timezone.utc), None, "",
                    datetime(2020, 1, 2, tzinfo=timezone.utc))])
    engine = get_engine()
    context = SQLContext(engine, team)
    timestamp = context.event_column("timestamp")
    select = exp.select(exp.Count(this=exp.Star()), context.event_property("$browser"), context.person_property("email")).from_(
        context.events_table()).join(context.person_table(), on=context.person_join_condition(), join_type="left").where(exp.and_(
            context.team_filter(), exp.EQ(this=context.event_column("event"), expression=context.param("$pageview")),
            exp.GTE(this=timestamp, expression=engine.timestamp(datetime(2020, 1, 1, tzinfo=timezone.utc), context.params)),
        )).group_by(exp.Literal.number(2), exp.Literal.number(3))
    sql, _ = engine.render(select, context.params)
    plan = "\n".join(row[0] for row in clickhouse.query("EXPLAIN indexes = 1 " + sql, settings=QUERY_SETTINGS).rows)
    primary_key = plan[plan.index("PrimaryKey"):]
    condition = next(line for line in primary_key.splitlines() if "Condition:" in line)
    assert "team_id in [" in condition and "event in ['$pageview'" in condition and "toDate(timestamp) in [" in condition


def test_the_current_person_comes_from_the_overrides(clickhouse, team, trends):
    first, second = person(team, "a"), person(team, "b")
    events(team, ("$pageview", "a", "2020-01-02 10:00"), ("$pageview", "b", "2020-01-02 11:00"))
    day = {"dateRange": {"date_from": "2020-01-02", "date_to": "2020-01-02"}}
    assert trends([{"kind": "EventsNode", "event": "$pageview", "math": "dau"}], **day)[0]["count"] == 2
    write_overrides(team.id, [("b", first.id, 1)])  # b merged into a's person
    assert trends([{"kind": "EventsNode", "event": "$pageview", "math": "dau"}], **day)[0]["count"] == 1
    write_overrides(team.id, [("b", second.id, 2)])  # a newer override wins
    assert trends([{"kind": "EventsNode", "event": "$pageview", "math": "dau"}], **day)[0]["count"] == 2


def test_sql_insights_read_materialized_columns(clickhouse, team, client):
    from zoneinfo import ZoneInfo

    from queries.sql.sandbox import compile_query

    person(team, "u1")
    events(team, *[("$pageview", "u1", "2020-01-02 10:00", {"$browser": browser, "$screen_name": screen, "n": 1})
                   for browser, screen in (("Chrome", "7"), ("Safari", "2.5"), ("Chrome", None))])
    query = ("SELECT properties.$browser AS b, sum(properties.$screen_name) AS s, count() AS c FROM events "
             "WHERE properties.$browser != 'Firefox' AND properties.n = 1 GROUP BY b ORDER BY b")
    engine = get_engine()
    compiled = compile_query(query, team, engine, now=datetime(2020, 1, 3, tzinfo=timezone.utc), tz=ZoneInfo("UTC"))
    sql, _ = engine.render(compiled.tree, compiled.params)
    assert '"mat_$browser"' in sql and '"mat_$screen_name"' in sql
    assert "'$browser'" not in sql and "'$screen_name'" not in sql  # never parsed out of the JSON
    assert "'n'" in sql  # `n` has no column of its own
    body = client.post(f"/api/projects/{team.id}/query/", {"query": {"kind": "HogQLQuery", "query": query}}, format="json").json()
    assert body["results"] == [["Chrome", 7.0, 2], ["Safari", 2.5, 1]]


def test_the_overrides_are_joined_only_for_a_team_that_has_some(clickhouse, team):
    other_team = make_team()
    def source_sql(team_id):
        return ClickHouseEngine().events_source(team_id, "e").sql(dialect="clickhouse")

    assert "person_distinct_id_overrides" not in source_sql(team.id)
    write_overrides(other_team.id, [("b", 1, 1)])  # another team's overrides change nothing here
    assert "person_distinct_id_overrides" not in source_sql(team.id)
    assert "person_distinct_id_overrides" in source_sql(other_team.id)
    write_overrides(team.id, [("b", 1, 1)])
    assert "person_distinct_id_overrides" in source_sql(team.id)


def test_ctes_read_twice_or_more_are_computed_once(clickhouse):
    engine, params = ClickHouseEngine(), Params()
    once = exp.select(exp.alias_(exp.Literal.number(2), "y"))
    twice = exp.select(exp.alias_(exp.Literal.number(1), "x"))
    select = (exp.select("a.x", "a2.x", "b.y").from_(exp.to_table("a").as_("a"))
              .join(exp.to_table("a").as_("a2"), join_type="cross").join(exp.to_table("b").as_("b"), join_type="cross")
              .with_("a", as_=twice).with_("b", as_=once))
    sql, _ = engine.render(select, params)
    assert "a AS MATERIALIZED (" in sql and "b AS (" in sql
    assert run(engine, select, params) == [(1, 1, 2)]


def test_ctes_marked_not_materialized_are_computed_at_each_read(clickhouse):
    engine, params = ClickHouseEngine(), Params()
    select = sqlglot.parse_one("WITH a AS NOT MATERIALIZED (SELECT 1 AS x) SELECT a.x, a2.x FROM a CROSS JOIN a AS a2")
    sql, _ = engine.render(select, params)
    assert "a AS (" in sql and "MATERIALIZED" not in sql
    assert run(engine, select, params) == [(1, 1)]


SLOW = "SELECT count() FROM numbers(100000) AS a, numbers(100000) AS b"


def test_timeout_is_the_engine_timeout_and_the_session_stays_usable(clickhouse):
    engine, params = get_engine(), Params()
    with pytest.raises(EngineTimeout):
        engine.execute(exp.maybe_parse(SLOW, dialect="clickhouse"), params, timeout=0.3)
    assert engine.execute(exp.select(exp.Literal.number(1)), params, timeout=5) == [(1,)]


class BlockingClient:
    """Stands in for a ClickHouse server: a query runs until `kill_query` names its id (the wiring;
    tests/queries/test_clickhouse_cancel.py kills real statements on chDB and over HTTP)."""

    def __init__(self):
        self.killed, self.running = [], {}

    def query(self, sql, *, parameters=None, settings=None, query_id=None):
        from events.clickhouse.client import QUERY_WAS_CANCELLED, ClickHouseError

        done = self.running[query_id] = threading.Event()
        if not done.wait(10):
            raise AssertionError("never killed")
        raise ClickHouseError("Code: 394. DB::Exception: Query was cancelled. (QUERY_WAS_CANCELLED)", QUERY_WAS_CANCELLED)

    def kill_query(self, query_id):
        self.killed.append(query_id)
        self.running[query_id].set()


def test_cancel_check_kills_the_running_query_by_its_id():
    client = BlockingClient()
    engine, cancelled = ClickHouseEngine(client=client), threading.Event()
    threading.Timer(0.3, cancelled.set).start()
    with pytest.raises(DatabaseError):
        engine.execute(exp.select(exp.Literal.number(1)), Params(), timeout=30, cancel_check=cancelled.is_set)
    assert client.killed == list(client.running)


def test_cancel_backend_kills_the_jobs_queries():
    client = BlockingClient()
    outcome = {}

    def job():  # queries.jobs.run_job: the backend id is stored, then the query runs in this thread
        engine = ClickHouseEngine(client=client)
        outcome["id"] = engine.backend_id()
        try:
            engine.execute(exp.select(exp.Literal.number(1)), Params(), timeout=30)
        except DatabaseError as error:
            outcome["error"] = error

    worker = threading.Thread(target=job)
    worker.start()
    while not client.running:
        threading.Event().wait(0.05)
    ClickHouseEngine(client=client).cancel_backend(outcome["id"])  # queries.jobs.cancel, from another request
    worker.join(10)
    assert list(client.running) == [outcome["id"]] and client.killed == [outcome["id"]] and "error" in outcome
