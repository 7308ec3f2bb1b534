"""The SQL insights sandbox against hostile queries: each is refused with a clear 400, or bounded."""
import pytest
from django.db import connection
from sqlglot import exp

from events.models import Event, Person, PersonDistinctId
from queries import clock
from queries.sql.engine import get_engine
from queries.sql.sandbox import compile_query
from tests.conftest import error
from tests.factories import make_team
from tests.queries.events import events, person, ts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

TABLES = "You can query the tables: events, persons, person_distinct_ids, sessions."
FUNCTIONS = "SQL insights support a subset of HogQL functions (count, sum, avg, quantile, if, coalesce, toString, toDate, toStartOfDay, dateDiff...)."


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts("2020-01-15 12:00"))


@pytest.fixture
def data(team):
    person(team, "alice", properties={"email": "alice@example.com"})
    events(team, ("$pageview", "alice", "2020-01-10 10:00", {"$browser": "Chrome"}), ("$pageview", "bob", "2020-01-11 10:00"))
    other = make_team(name="Other")
    person(other, "mallory", properties={"email": "mallory@evil.example"})
    events(other, ("secret", "mallory", "2020-01-10 10:00", {"token": "s3cr3t"}))
    return other


def post(client, team, query, status: int, **extra):
    response = client.post(f"/api/projects/{team.id}/query/", {"query": {"kind": "HogQLQuery", "query": query, **extra}}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def refused(detail: str) -> dict:
    return error("validation_error", "invalid_input", detail)


@pytest.mark.parametrize("query, detail", [
    # Other tables: the database's own, the events store's real names, catalogs, ClickHouse system tables.
    ("SELECT * FROM events_event", f"Table `events_event` is not allowed. {TABLES}"),
    ("SELECT * FROM events_person", f"Table `events_person` is not allowed. {TABLES}"),
    ("SELECT * FROM accounts_personalapikey", f"Table `accounts_personalapikey` is not allowed. {TABLES}"),
    ("SELECT * FROM pg_catalog.pg_tables", f"Table `pg_catalog.pg_tables` is not allowed. {TABLES}"),
    ("SELECT usename, passwd FROM pg_shadow", f"Table `pg_shadow` is not allowed. {TABLES}"),
    ("SELECT * FROM sqlite_master", f"Table `sqlite_master` is not allowed. {TABLES}"),
    ("SELECT * FROM sqlite_schema", f"Table `sqlite_schema` is not allowed. {TABLES}"),
    ("SELECT * FROM information_schema.tables", f"Table `information_schema.tables` is not allowed. {TABLES}"),
    ("SELECT * FROM system.tables", f"Table `system.tables` is not allowed. {TABLES}"),
    ("SELECT * FROM main.events", f"Table `main.events` is not allowed. {TABLES}"),
    ("SELECT * FROM `events_event`", f"Table `events_event` is not allowed. {TABLES}"),
    ("SELECT * FROM \"EVENTS\"", f"Table `EVENTS` is not allowed. {TABLES}"),
    # ... also hidden in subqueries, CTEs, joins, set operations and IN.
    ("SELECT * FROM (SELECT * FROM events_event) AS x", f"Table `events_event` is not allowed. {TABLES}"),
    ("WITH t AS (SELECT * FROM pg_user) SELECT * FROM t", f"Table `pg_user` is not allowed. {TABLES}"),
    ("SELECT 1 FROM events e JOIN sqlite_master m ON 1 = 1", f"Table `sqlite_master` is not allowed. {TABLES}"),
    ("SELECT event FROM events UNION ALL SELECT name FROM sqlite_master", f"Table `sqlite_master` is not allowed. {TABLES}"),
    ("SELECT 1 FROM events WHERE event IN (SELECT relname FROM pg_class)", f"Table `pg_class` is not allowed. {TABLES}"),
    ("SELECT (SELECT count() FROM pg_stat_activity)", f"Table `pg_stat_activity` is not allowed. {TABLES}"),
    # Table functions reading files, URLs or other databases.
    ("SELECT * FROM url('http://169.254.169.254/latest/meta-data', CSV)",
     f"Table functions such as `url('http://169.254.169.254/latest/meta-data', CSV)` are not allowed. {TABLES}"),
    ("SELECT * FROM file('/etc/passwd')", f"Table functions such as `file('/etc/passwd')` are not allowed. {TABLES}"),
    ("SELECT * FROM postgresql('db:5432', 'x', 't', 'u', 'p')",
     f"Table functions such as `postgresql('db:5432', 'x', 't', 'u', 'p')` are not allowed. {TABLES}"),
    ("SELECT * FROM numbers(1000000000)", f"Table functions such as `numbers(1000000000)` are not allowed. {TABLES}"),
    # Functions touching files, the network, the server or its time.
    *[(f"SELECT {call}", f"Unsupported function: {call.split('(')[0]}(). {FUNCTIONS}") for call in [
        "pg_read_file('/etc/passwd')", "pg_read_binary_file('/etc/passwd')", "pg_ls_dir('.')", "lo_import('/etc/passwd')",
        "load_extension('/tmp/evil.so')", "readfile('/etc/passwd')", "writefile('/tmp/x', 'y')", "url('http://x')",
        "file('x')", "s3('http://x')", "dblink('host=x', 'select 1')", "pg_sleep(100)", "sleep(100)", "version()",
        "sqlite_version()", "current_setting('data_directory')", "set_config('statement_timeout', '0', false)",
        "pg_terminate_backend(1)", "randomblob(1000000000)", "zeroblob(1000000000)", "repeat('x', 1000000000)",
        "generate_series(1, 1000000000)", "currentDatabase()", "hostName()", "fts3_tokenizer('x')",
    ]],
    # Statements other than one SELECT.
    ("SELECT 1; DROP TABLE events_event", "Only one statement is allowed: a single SELECT query."),
    ("SELECT 1; SELECT 2", "Only one statement is allowed: a single SELECT query."),
    ("SELECT 1;\nDELETE FROM events", "Only one statement is allowed: a single SELECT query."),
    ("DROP TABLE events", "Only SELECT queries are allowed, not `DROP TABLE events`."),
    ("DELETE FROM events", "Only SELECT queries are allowed, not `DELETE FROM events`."),
    ("UPDATE events SET event = 'x'", "Only SELECT queries are allowed, not `UPDATE events SET event = 'x'`."),
    ("INSERT INTO events (event) SELECT event FROM events", "Only SELECT queries are allowed, not `INSERT INTO events (event) SELECT event FROM events`."),
    ("CREATE TABLE x AS SELECT * FROM events", "Only SELECT queries are allowed, not `CREATE TABLE x AS SELECT * FROM events`."),
    ("ALTER TABLE events DROP COLUMN event", "Only SELECT queries are allowed, not `ALTER TABLE events DROP COLUMN event`."),
    ("TRUNCATE TABLE events", "Only SELECT queries are allowed, not `TRUNCATE TABLE events`."),
    ("PRAGMA table_info(events_event)", "Only SELECT queries are allowed, not `PRAGMA table_info(events_event)`."),
    ("ATTACH DATABASE '/tmp/x.db' AS x", "Only SELECT queries are allowed, not `ATTACH DATABASE '/tmp/x.db' AS x`."),
    ("SET statement_timeout = 0", "Only SELECT queries are allowed, not `SET statement_timeout = 0`."),
    ("VACUUM", "Only SELECT queries are allowed, not `VACUUM`."),
    ("", "The query is empty."),
    (" ;; ", "The query is empty."),
    # Clauses and syntax outside the supported subset.
    ("WITH RECURSIVE t AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM t) SELECT count() FROM t",
     "WITH RECURSIVE is not allowed in SQL insights."),
    ("WITH 1 AS x SELECT x", "Only WITH name AS (SELECT ...) is supported."),
    ("SELECT * FROM events SETTINGS max_execution_time = 0", "SETTINGS is not supported in SQL insights: `SELECT * FROM events SETTINGS max_execution_time = 0`"),
    ("SELECT * FROM events FORMAT JSON", "FORMAT is not supported in SQL insights: `SELECT * FROM events FORMAT JSON`"),
    ("SELECT event FROM events PREWHERE event = 'x'", "PREWHERE is not supported in SQL insights: `SELECT event FROM events PREWHERE event = 'x'`"),
    ("SELECT x FROM events ARRAY JOIN [1, 2] AS x", "ARRAY JOIN is not supported in SQL insights."),
    ("SELECT event FROM events e ASOF JOIN persons p ON 1 = 1", "ASOF JOIN is not supported in SQL insights."),
    ("SELECT event FROM events e JOIN persons p USING (id)", "USING is not supported in SQL insights: `JOIN persons AS p USING (id)`"),
    ("SELECT row_number() OVER (ORDER BY timestamp) FROM events", "Window functions (OVER ...) are not supported in SQL insights."),
    ("SELECT event FROM events LIMIT 1 BY event", "EXPRESSIONS is not supported in SQL insights: `LIMIT 1 BY event`"),
    ("SELECT count() FROM events GROUP BY event WITH TOTALS", "TOTALS is not supported in SQL insights: `GROUP BY event WITH TOTALS`"),
    ("SELECT {x: String}", "Typed query parameters `{x: String}` are not supported; use {name} placeholders."),
    ("SELECT {nope}", "Unknown placeholder {nope}: use {filters}, {variables.<code_name>} or a key of `values`."),
    ("SELECT {variables.missing}", "The variable 'missing' is not defined in the query's `variables`."),
    ("SELECT {filters}", "{filters} needs exactly one events table in the FROM clause of its SELECT."),
    ("SELECT * FROM events INTO OUTFILE '/tmp/x'", "Syntax error in SQL query: Invalid expression / Unexpected token. Line 1, Col: 25."),
    # Fields the virtual tables do not expose (the team column in particular).
    ("SELECT team_id FROM events", "Unknown field `team_id`."),
    ("SELECT event FROM events WHERE team_id IN (1, 2, 3)", "Unknown field `team_id`."),
    ("SELECT f_event FROM events", "Unknown field `f_event`."),
    ("SELECT s.team_id FROM events AS s", "Unknown field `s.team_id` on the events table."),
    ("SELECT c0 FROM (SELECT event FROM events)", "Unknown field `c0`."),
    ("SELECT current_user", "Unknown field `current_user`: the query has no FROM clause."),
    ("SELECT created_at FROM events e JOIN persons p ON e.person_id = p.id", "Field `created_at` is ambiguous: prefix it with a table alias."),
    # Misuse that would otherwise behave differently per database.
    ("SELECT event, timestamp FROM events GROUP BY event",
     "Column 'timestamp' must be in GROUP BY or inside an aggregate function such as count() or any()."),
    ("SELECT DISTINCT event FROM events ORDER BY timestamp", "With SELECT DISTINCT, ORDER BY can only use the selected columns."),
    ("SELECT event FROM events WHERE count() > 1", "Aggregate functions such as count() are not allowed in WHERE."),
    ("SELECT count(sum(1)) FROM events", "Aggregate functions cannot be nested: `sum(1)`"),
    ("SELECT event FROM events LIMIT (SELECT 1)", "LIMIT must be a whole number of 0 or more."),
    ("SELECT event FROM events LIMIT -1", "LIMIT must be a whole number of 0 or more."),
    ("SELECT event FROM events WHERE event =~ '(unclosed'",
     "Invalid regular expression '(unclosed': missing ), unterminated subpattern at position 0"),
    ("SELECT 1 UNION ALL SELECT 1, 2", "Both sides of UNION must select the same number of columns (1 and 2)."),
    ("SELECT * FROM events AS e, persons AS e", "The table alias 'e' is used twice in one FROM clause."),
    ("SELECT 'a\x00b'", "Strings cannot contain NUL characters."),
])
def test_refused_with_a_clear_400(client, team, data, query, detail):
    assert post(client, team, query, 400) == refused(detail)


def test_comments_and_strings_are_data_not_code(client, team, data):
    body = post(client, team, "SELECT 1 -- ; DROP TABLE events_event\n/* ; DELETE FROM events */ , 'x' /* */", 200)
    assert body["results"] == [[1, "x"]]
    assert body["hogql"] == "SELECT 1, 'x' LIMIT 100"
    tricky = ["'; DROP TABLE events_event; --", "%(p0)s", "%s", "100%", "\\", "\"quoted\"", "`tick`", "$$dollar$$", "é漢字🙂", "a''b"]
    literals = ", ".join("'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'" for value in tricky)
    assert post(client, team, f"SELECT {literals}", 200)["results"] == [tricky]
    # User aliases never reach the SQL: they only name the columns.
    body = post(client, team, 'SELECT event AS "x"" FROM pg_user; --", 1 AS `%(p0)s` FROM events LIMIT 1', 200)
    assert body["columns"] == ['x" FROM pg_user; --', "%(p0)s"]
    assert body["results"] == [["$pageview", 1]]
    # Placeholder values are bound, whatever they hold.
    assert post(client, team, "SELECT count() FROM events WHERE event = {name}", 200,
                values={"name": "x' OR '1' = '1"})["results"] == [[0]]


def test_other_teams_are_unreachable(client, team, data):
    assert post(client, team, "SELECT count() FROM events WHERE event = 'secret' OR properties.token = 's3cr3t'", 200)["results"] == [[0]]
    assert post(client, team, "SELECT count() FROM persons", 200)["results"] == [[2]]
    assert post(client, team, "SELECT count() FROM person_distinct_ids WHERE distinct_id = 'mallory'", 200)["results"] == [[0]]
    mallory = str(Person.objects.get(team=data).uuid)
    assert post(client, team, f"SELECT count() FROM events WHERE person_id = '{mallory}'", 200)["results"] == [[0]]
    # Another team's id in the URL is refused before any SQL runs.
    response = client.post(f"/api/projects/{data.id}/query/", {"query": {"kind": "HogQLQuery", "query": "SELECT 1"}}, format="json")
    assert response.status_code == 403
    response = client.post(f"/api/environments/{data.id}/query/", {"query": {"kind": "HogQLQuery", "query": "SELECT 1"}}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize("query", [
    "SELECT count() FROM events",
    "SELECT e.event, p.properties.email FROM events e LEFT JOIN persons p ON p.id = e.person_id",
    "SELECT * FROM events e FULL JOIN persons p ON 1 = 1 RIGHT JOIN person_distinct_ids d ON d.person_id = p.id",
    "WITH a AS (SELECT * FROM events), b AS (SELECT * FROM a) SELECT (SELECT count() FROM persons), person.properties.x FROM b, events",
    "SELECT distinct_id FROM events UNION ALL SELECT distinct_id FROM person_distinct_ids EXCEPT SELECT toString(id) FROM persons",
    "SELECT count() FROM events WHERE person_id IN (SELECT person_id FROM person_distinct_ids) AND person_id = 'a5a8d7d6-4a5b-4c3e-9f1a-1b2c3d4e5f60'",
    "SELECT toString(person_id), event FROM events WHERE {filters}",
])
def test_every_table_read_is_filtered_on_the_team(team, query):
    """The compiled SQL reads only the events store, and every read of one of its tables carries the team filter."""
    filters = {"properties": [{"key": "email", "value": "x", "operator": "exact", "type": "person"}]}
    from queries.schema import HogQLFilters

    compiled = compile_query(query, team, get_engine(), now=ts("2020-01-15 12:00"), tz=clock.team_timezone(team),
                             filters=HogQLFilters.model_validate(filters))
    engine = get_engine()
    sources = (engine.events_source(team.id, "x"), engine.persons_source(team.id, "x"), engine.distinct_ids_source(team.id, "x"))
    allowed = {table.name for source in sources for table in [source, *source.find_all(exp.Table)] if isinstance(table, exp.Table)}
    tables = list(compiled.tree.find_all(exp.Table))
    assert tables
    for table in tables:
        name = table.name
        if name.startswith("w"):  # CTE references (their bodies are checked as tables of their own)
            continue
        assert name in allowed, name
        alias = table.alias
        joined = isinstance(table.parent, exp.Join)
        condition = table.parent.args["on"] if joined else table.find_ancestor(exp.Select).args["where"].this
        filters_on_team = [
            node for node in condition.find_all(exp.EQ)
            if isinstance(node.this, exp.Column) and node.this.name == "team_id" and node.this.table == alias
            and node.expression == exp.Literal.number(team.id)
        ]
        assert filters_on_team, f"{name} AS {alias} is read without the team filter"
    # No user-chosen identifier or string reaches the SQL text.
    rendered = compiled.tree.sql(dialect=connection.vendor if connection.vendor == "sqlite" else "postgres")
    assert "a5a8d7d6" not in rendered


def test_rows_are_capped(client, team):
    events(team, *[("e", f"user{index}", "2020-01-10 10:00") for index in range(40)])
    body = post(client, team, "SELECT a.event FROM events a, events b, events c LIMIT 1000000", 200)
    assert len(body["results"]) == 50_000
    body = post(client, team, "SELECT a.event FROM events a, events b", 200)
    assert (len(body["results"]), body["hasMore"], body["limit"]) == (100, True, 100)


@pytest.mark.parametrize("query", [
    "SELECT count() FROM events a, events b, events c, events d, events e",
    "SELECT count() FROM events a JOIN events b ON a.event = b.event JOIN events c ON b.event = c.event "
    "JOIN events d ON 1 = 1 JOIN events e ON 1 = 1",
    "SELECT sum(length(a.distinct_id || b.distinct_id)) FROM events a, events b, events c, events d, events e",
])
def test_slow_queries_are_stopped_by_the_timeout(client, team, settings, query):
    settings.QUERY_TIMEOUT_SECONDS = 0.5
    # 10^10 joined rows: more than ClickHouse counts in half a second on an idle machine.
    events(team, *[("e", f"user{index}", "2020-01-10 10:00") for index in range(100)])
    assert post(client, team, query, 504) == error("server_error", "timeout", "The query took too long to compute.")
    # The connection is still usable afterwards.
    assert post(client, team, "SELECT count() FROM events", 200)["results"] == [[100]]


def test_oversized_and_deeply_nested_queries(client, team):
    assert post(client, team, "SELECT " + "(" * 5000 + "1" + ")" * 5000, 400) == refused("The query is nested too deeply.")
    assert post(client, team, "SELECT " + " + ".join(["1"] * 5000), 400) == refused("The query is nested too deeply.")
    nested = "SELECT 1 AS x"
    for _ in range(40):
        nested = f"SELECT x FROM ({nested})"
    assert post(client, team, nested, 400) == refused("The query nests subqueries more than 32 levels deep.")
    assert post(client, team, "SELECT '" + "x" * 100_001 + "'", 400) == refused("The query is too long (more than 100000 characters).")


def test_bad_query_nodes_are_400(client, team):
    response = client.post(f"/api/projects/{team.id}/query/", {"query": {"kind": "HogQLQuery", "query": 42}}, format="json")
    assert response.status_code == 400
    assert response.json()["type"] == "invalid_request"
    response = client.post(f"/api/projects/{team.id}/query/", {"query": {"kind": "HogQLQuery"}}, format="json")
    assert response.status_code == 400
    assert post(client, team, "SELECT", 400) == refused("A SELECT needs at least one column.")
    assert post(client, team, "SELECT event FROM events GROUP BY", 400) == refused("GROUP BY needs at least one expression.")
    assert post(client, team, "SELECT event FROM events WHERE", 400)["detail"].startswith("Syntax error in SQL query:")


def test_ordering_by_a_not_null_column_leaves_null_placement_to_the_engine(team):
    """`ORDER BY timestamp DESC` must be servable by the (team, timestamp) index: no NULLS FIRST/LAST clause."""
    engine = get_engine()
    for query in ("SELECT event FROM events ORDER BY timestamp DESC LIMIT 10", "SELECT event FROM events ORDER BY timestamp"):
        compiled = compile_query(query, team, engine, now=ts("2020-01-15 12:00"), tz=clock.team_timezone(team))
        assert "NULLS" not in compiled.tree.sql(dialect=engine.dialect)
    compiled = compile_query("SELECT event FROM events ORDER BY properties.x DESC", team, engine, now=ts("2020-01-15 12:00"),
                             tz=clock.team_timezone(team))
    rendered = compiled.tree.sql(dialect=engine.dialect)
    assert ("NULLS LAST" in rendered) == (engine.vendor == "postgresql")  # ClickHouse puts NULLs last
