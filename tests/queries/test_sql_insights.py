"""SQL insights (HogQLQuery, DataVisualizationNode) through POST /api/projects/:id/query/, number by number."""
import pytest

from events.clickhouse import is_enabled as clickhouse_enabled
from queries import clock
from tests.factories import make_member, make_team
from tests.queries.events import events, person, ts

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

NOW = "2020-01-15 12:00"


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: ts(NOW))


@pytest.fixture
def people(team):
    """alice (two distinct ids), bob, carol; erin's events are personless. Another team has its own events."""
    alice = person(team, "alice", "alice-2", properties={"email": "alice@example.com", "name": "Alice", "plan": "pro"})
    bob = person(team, "bob", properties={"email": "bob@example.com", "plan": "free"}, created_at="2020-01-02 00:00")
    carol = person(team, "carol", created_at="2020-01-03 00:00")
    events(
        team,
        ("$pageview", "alice", "2020-01-09 10:00", {"$browser": "Chrome", "price": 10}),
        ("$pageview", "alice-2", "2020-01-10 12:00", {"$browser": "Safari", "price": "20"}),
        ("signed up", "alice", "2020-01-10 12:30", {"plan": "pro"}),
        ("$pageview", "bob", "2020-01-11 23:30", {"$browser": "Chrome", "price": 5.5}),
        ("purchase", "bob", "2020-01-12 08:00", {"price": 2.5, "paid": True, "cart": {"items": 2, "coupon": {"code": "X"}}}),
        ("$pageview", "carol", "2020-01-14 09:00", {"$browser": "Firefox"}),
        ("$pageview", "erin", "2020-01-14 10:00", {"$browser": "Chrome"}),
        personless=("erin",),
    )
    other = make_team(name="Other")
    person(other, "mallory", properties={"email": "mallory@evil.example", "plan": "pro"})
    events(other, *[("$pageview", "mallory", "2020-01-10 10:00", {"$browser": "Chrome", "price": 1000})] * 3)
    return {"alice": alice, "bob": bob, "carol": carol, "other": other}


def sql(client, team, query: str, status: int = 200, **extra) -> dict:
    response = client.post(f"/api/projects/{team.id}/query/", {"query": {"kind": "HogQLQuery", "query": query, **extra}}, format="json")
    assert response.status_code == status, response.content
    return response.json()


def rows(client, team, query: str, **extra) -> list:
    return sql(client, team, query, **extra)["results"]


def test_response_shape(client, team, people):
    body = sql(client, team, "SELECT event, count() AS c FROM events GROUP BY event ORDER BY c DESC, event")
    assert body["results"] == [["$pageview", 5], ["purchase", 1], ["signed up", 1]]
    assert body["columns"] == ["event", "c"]
    assert body["types"] == [["event", "String"], ["c", "Int64"]]
    assert body["hogql"] == "SELECT event, count() AS c FROM events GROUP BY event ORDER BY c DESC, event LIMIT 100"
    assert (body["hasMore"], body["limit"], body["offset"]) == (False, 100, 0)
    assert body["query"] == "SELECT event, count() AS c FROM events GROUP BY event ORDER BY c DESC, event"
    assert body["error"] is None
    assert body["is_cached"] is False and body["cache_key"].startswith("cache_")
    assert body["timezone"] == "UTC"


def test_properties_and_person_properties(client, team, people):
    assert rows(client, team, "SELECT distinct_id, properties.$browser, person.properties.email FROM events "
                              "WHERE event = '$pageview' ORDER BY timestamp") == [
        ["alice", "Chrome", "alice@example.com"],
        ["alice-2", "Safari", "alice@example.com"],
        ["bob", "Chrome", "bob@example.com"],
        ["carol", "Firefox", None],
        ["erin", "Chrome", None],
    ]
    body = sql(client, team, "SELECT properties['$browser'] AS browser, `properties`.`price` FROM events WHERE event = 'purchase'")
    assert body["results"] == [[None, "2.5"]]
    assert body["columns"] == ["browser", "price"]
    # Nested keys; a key under a value that is not an object is NULL.
    assert rows(client, team, "SELECT properties.cart.items, properties['cart']['coupon']['code'], properties.price.x, "
                              "properties.cart.items + 1 FROM events WHERE event = 'purchase'") == [["2", "X", None, 3.0]]


def test_null_semantics_of_comparisons(client, team, people):
    # An event without the property matches `!=` and never `=` (HogQL's ifNull rules).
    assert rows(client, team, "SELECT count() FROM events WHERE properties.$browser != 'Chrome'") == [[4]]
    assert rows(client, team, "SELECT count() FROM events WHERE properties.$browser = 'Chrome'") == [[3]]
    assert rows(client, team, "SELECT count() FROM events WHERE NOT (properties.$browser = 'Chrome')") == [[4]]
    assert rows(client, team, "SELECT countIf(properties.$browser IS NULL), countIf(properties.$browser IS NOT NULL) FROM events") == [[2, 5]]


def test_numbers_from_properties(client, team, people):
    assert rows(client, team, """
        SELECT sum(toFloat(properties.price)), avg(toFloat(properties.price)), countIf(toFloat(properties.price) > 5),
               max(toFloat(properties.price)), min(toFloat(properties.price)), quantile(0.5)(toFloat(properties.price)),
               median(toFloat(properties.price)), quantile(0.25)(toFloat(properties.price)), sum(toInt(properties.price))
        FROM events""") == [[38.0, 9.5, 3, 20.0, 2.5, 7.75, 7.75, 4.75, 37]]
    # A property compared with a number is compared as a number ("20" > 6), with text as text.
    assert rows(client, team, "SELECT count() FROM events WHERE properties.price > 6") == [[2]]
    assert rows(client, team, "SELECT count() FROM events WHERE properties.price = '20'") == [[1]]


def test_arithmetic_and_scalar_functions(client, team):
    body = sql(client, team, """
        SELECT 1 + 2 * 3, 7 / 2, 7 % 3, 1 / 0, -(2.5), round(2.567, 2), abs(-3), 'a' || 'b', concat('x', 1, 'y'),
               lower('AbC'), upper('abc'), length('héllo'), substring('abcdef', 2, 3), replaceAll('a-b-c', '-', '+'),
               trim('  x  '), if(1 = 1, 'yes', 'no'), multiIf(1 = 2, 'a', 2 = 2, 'b', 'c'), coalesce(NULL, 3),
               ifNull(NULL, 'd'), startsWith('abc', 'ab'), endsWith('abc', 'bc'), empty(''), notEmpty(''),
               toString(42), toFloat('1.5'), toInt('42'), toInt(2.7), toInt(-2.7), CAST('3' AS Int64), 2.5::String""")
    assert body["results"] == [[7, 3.5, 1, None, -2.5, 2.57, 3, "ab", "x1y", "abc", "ABC", 5, "bcd", "a+b+c", "x", "yes", "b", 3,
                                "d", True, True, True, False, "42", 1.5, 42, 2, -2, 3, "2.5"]]
    assert [kind for _name, kind in body["types"][:5]] == ["Int64", "Float64", "Int64", "Float64", "Float64"]


def test_case_like_regex_in_between(client, team, people):
    assert rows(client, team, """
        SELECT CASE WHEN event = 'purchase' THEN 'money' WHEN event LIKE '$%' THEN 'view' ELSE 'other' END AS kind, count()
        FROM events GROUP BY kind ORDER BY kind""") == [["money", 1], ["other", 1], ["view", 5]]
    assert rows(client, team, "SELECT count() FROM events WHERE properties.$browser LIKE 'chrome'") == [[0]]
    assert rows(client, team, "SELECT count() FROM events WHERE properties.$browser ILIKE 'chr%'") == [[3]]
    assert rows(client, team, "SELECT count() FROM events WHERE properties.$browser NOT ILIKE '%r%'") == [[2]]
    assert rows(client, team, "SELECT count() FROM events WHERE event =~ '^sign' OR event =~* '^PUR'") == [[2]]
    assert rows(client, team, "SELECT count() FROM events WHERE event !~ 'view$'") == [[2]]
    assert rows(client, team, "SELECT count() FROM events WHERE match(distinct_id, '^alice')") == [[3]]
    assert rows(client, team, "SELECT count() FROM events WHERE distinct_id IN ('bob', 'carol') AND event NOT IN ('purchase')") == [[2]]
    assert rows(client, team, "SELECT count() FROM events WHERE toFloat(properties.price) BETWEEN 5 AND 10") == [[2]]
    assert rows(client, team, "SELECT count() FROM events WHERE timestamp BETWEEN '2020-01-10' AND '2020-01-11 23:59:59'") == [[3]]


def test_persons_person_ids_and_joins(client, team, people):
    alice, bob = str(people["alice"].uuid), str(people["bob"].uuid)
    assert rows(client, team, "SELECT person_id, count() FROM events WHERE person_id IS NOT NULL "
                              "GROUP BY person_id ORDER BY count() DESC LIMIT 2") == [[alice, 3], [bob, 2]]
    assert rows(client, team, f"SELECT count() FROM events WHERE person_id = '{alice}'") == [[3]]
    assert rows(client, team, "SELECT count() FROM events WHERE person_id = 'not-a-uuid'") == [[0]]
    assert rows(client, team, f"SELECT count() FROM events WHERE toString(person_id) = '{bob}'") == [[2]]
    assert rows(client, team, "SELECT count(DISTINCT person_id), uniq(distinct_id), count(person_id) FROM events") == [[3, 5, 6]]
    assert rows(client, team, """
        SELECT p.properties.email AS email, count() FROM events AS e JOIN persons AS p ON e.person_id = p.id
        GROUP BY email ORDER BY email""") == [["alice@example.com", 3], ["bob@example.com", 2], [None, 1]]
    assert rows(client, team, """
        SELECT e.distinct_id, p.id FROM events e LEFT JOIN persons p ON p.id = e.person_id
        WHERE e.event = '$pageview' AND e.timestamp > '2020-01-14' ORDER BY e.distinct_id""") == [
        ["carol", str(people["carol"].uuid)], ["erin", None]]
    assert rows(client, team, "SELECT id, properties.plan, is_identified, created_at FROM persons ORDER BY created_at") == [
        [alice, "pro", False, "2019-12-01T00:00:00Z"], [bob, "free", False, "2020-01-02T00:00:00Z"],
        [str(people["carol"].uuid), None, False, "2020-01-03T00:00:00Z"]]
    assert rows(client, team, "SELECT distinct_id, person_id FROM person_distinct_ids WHERE person_id = "
                              f"'{alice}' ORDER BY distinct_id") == [["alice", alice], ["alice-2", alice]]
    assert rows(client, team, "SELECT count() FROM events WHERE person_id IN (SELECT id FROM persons WHERE properties.plan = 'pro')") == [[3]]


def test_subqueries_ctes_and_set_operations(client, team, people):
    assert rows(client, team, "SELECT count() FROM (SELECT distinct_id FROM events GROUP BY distinct_id)") == [[5]]
    assert rows(client, team, """
        WITH views AS (SELECT person_id, properties.$browser AS browser FROM events WHERE event = '$pageview'),
             chrome AS (SELECT * FROM views WHERE browser = 'Chrome')
        SELECT (SELECT count() FROM views), count(DISTINCT person_id) FROM chrome""") == [[5, 2]]
    union = rows(client, team, "SELECT event FROM events WHERE event = 'purchase' UNION ALL SELECT 'literal' ORDER BY 1")
    # ClickHouse: ORDER BY binds to the last SELECT of the UNION. ClickHouse itself runs the parts of a
    # UNION ALL in parallel and returns them in no set order; the other engines concatenate them.
    assert union == [["purchase"], ["literal"]] or (clickhouse_enabled() and union == [["literal"], ["purchase"]])
    assert rows(client, team, "SELECT x FROM (SELECT event AS x FROM events UNION DISTINCT SELECT 'purchase') ORDER BY x") == [
        ["$pageview"], ["purchase"], ["signed up"]]
    assert sorted(rows(client, team, """
        SELECT distinct_id FROM events WHERE event = '$pageview'
        EXCEPT SELECT distinct_id FROM events WHERE properties.$browser = 'Chrome'""")) == [["alice-2"], ["carol"]]
    # Branches of different types: numbers stay numbers.
    assert sorted(rows(client, team, "SELECT toFloat(properties.price) AS p FROM events WHERE p > 6 UNION ALL SELECT 1")) == [
        [1.0], [10.0], [20.0]]
    assert sorted(rows(client, team, "SELECT event FROM events WHERE event = 'purchase' UNION ALL SELECT 1")) == [["1"], ["purchase"]]
    assert rows(client, team, "SELECT max(timestamp) = (SELECT max(timestamp) FROM events) FROM events") == [[True]]
    assert rows(client, team, "SELECT count() FROM events WHERE EXISTS (SELECT 1 FROM persons WHERE properties.plan = 'free')") == [[7]]


def test_select_aliases_positions_and_distinct(client, team, people):
    assert rows(client, team, """
        SELECT toStartOfDay(timestamp) AS day, count() AS c, c * 2 AS double FROM events
        WHERE day >= '2020-01-10' GROUP BY day HAVING c > 1 ORDER BY day""") == [
        ["2020-01-10T00:00:00Z", 2, 4], ["2020-01-14T00:00:00Z", 2, 4]]
    assert rows(client, team, "SELECT event, count() FROM events GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1") == [["$pageview", 5]]
    assert rows(client, team, "SELECT DISTINCT properties.$browser AS b FROM events ORDER BY b") == [
        ["Chrome"], ["Firefox"], ["Safari"], [None]]
    # Strings sort by code point on every database ('B' < 'a').
    assert rows(client, team, "SELECT x FROM (SELECT 'a' AS x UNION ALL SELECT 'B' UNION ALL SELECT 'b') ORDER BY x") == [
        ["B"], ["a"], ["b"]]
    assert rows(client, team, "SELECT count() AS c FROM events HAVING c > 100") == []


def test_select_star(client, team, people):
    body = sql(client, team, "SELECT * FROM events WHERE event = 'purchase'")
    assert body["columns"] == ["uuid", "event", "properties", "timestamp", "distinct_id", "created_at", "$session_id", "person_id"]
    assert [kind for _name, kind in body["types"]] == [
        "String", "String", "String", "DateTime64(6, 'UTC')", "String", "DateTime64(6, 'UTC')", "String", "UUID"]
    row = body["results"][0]
    assert row[1:5] == ["purchase", '{"cart": {"coupon": {"code": "X"}, "items": 2}, "paid": true, "price": 2.5}',
                        "2020-01-12T08:00:00Z", "bob"]
    assert row[6:] == ["", str(people["bob"].uuid)]
    assert len(row[0]) == 36 and row[0].count("-") == 4
    assert sql(client, team, "SELECT p.* FROM persons AS p LIMIT 1")["columns"] == ["id", "created_at", "properties", "is_identified"]


def test_dates_and_times(client, team, people):
    assert rows(client, team, "SELECT toDate(timestamp) AS day, count() FROM events GROUP BY day ORDER BY day") == [
        ["2020-01-09", 1], ["2020-01-10", 2], ["2020-01-11", 1], ["2020-01-12", 1], ["2020-01-14", 2]]
    assert rows(client, team, """
        SELECT now(), today(), yesterday(), toDateTime('2020-01-09 10:30:00'), toDate('2020-01-09'),
               toStartOfWeek(toDateTime('2020-01-15')), toStartOfWeek(toDate('2020-01-15'), 1), toMonday(now()),
               toStartOfMonth(now()), toStartOfQuarter(now()), toStartOfYear(now()), toStartOfHour(now()),
               toYear(now()), toMonth(now()), toDayOfMonth(now()), toHour(now()), toDayOfWeek(today()), toQuarter(now()),
               dateDiff('day', toDateTime('2020-01-09'), now()), dateDiff('week', toDate('2020-01-05'), today()),
               dateDiff('month', toDate('2019-12-31'), today()), dateDiff('hour', now() - INTERVAL 90 MINUTE, now()),
               now() - INTERVAL 1 MONTH, today() + INTERVAL 2 WEEK, addDays(now(), 1), dateAdd('year', 1, today()),
               now() - toIntervalDay(15)""") == [[
        "2020-01-15T12:00:00Z", "2020-01-15", "2020-01-14", "2020-01-09T10:30:00Z", "2020-01-09",
        "2020-01-12", "2020-01-13", "2020-01-13", "2020-01-01", "2020-01-01", "2020-01-01", "2020-01-15T12:00:00Z",
        2020, 1, 15, 12, 3, 1, 6, 2, 1, 2, "2019-12-15T12:00:00Z", "2020-01-29", "2020-01-16T12:00:00Z", "2021-01-15",
        "2019-12-31T12:00:00Z"]]
    # The same functions on event timestamps are computed in the database.
    assert rows(client, team, """
        SELECT toStartOfWeek(timestamp), toMonday(timestamp), toStartOfMonth(timestamp), toHour(timestamp),
               toDayOfWeek(timestamp), dateDiff('day', timestamp, now()), dateDiff('minute', timestamp, now()),
               timestamp + INTERVAL 1 DAY, toDate(timestamp) - INTERVAL 1 MONTH, toString(timestamp)
        FROM events WHERE event = 'purchase'""") == [[
        "2020-01-12", "2020-01-06", "2020-01-01", 8, 7, 3, 3 * 1440 + 240, "2020-01-13T08:00:00Z", "2019-12-12",
        "2020-01-12 08:00:00"]]
    assert rows(client, team, "SELECT count() FROM events WHERE timestamp > now() - INTERVAL 3 DAY") == [[2]]
    assert rows(client, team, "SELECT count() FROM events WHERE timestamp > 1578960000") == [[2]]  # 2020-01-14 00:00 UTC
    assert rows(client, team, "SELECT count() FROM events WHERE toDate(timestamp) = '2020-01-10'") == [[2]]
    assert rows(client, team, "SELECT count() FROM events WHERE timestamp >= toStartOfDay(now() - INTERVAL 1 DAY)") == [[2]]


def test_dates_follow_the_team_timezone(people, api_client):
    team = make_team(name="Tokyo")
    team.timezone = "Asia/Tokyo"
    team.save()
    api = api_client(user=make_member(team))
    events(team, ("a", "t1", "2020-01-10 20:00"), ("b", "t1", "2020-01-10 14:59"))  # Tokyo: 11 Jan 05:00, 10 Jan 23:59
    body = sql(api, team, """
        SELECT event, timestamp, toDate(timestamp), toStartOfDay(timestamp), toHour(timestamp), toString(timestamp),
               dateDiff('day', timestamp, toDateTime('2020-01-12')) FROM events ORDER BY timestamp""")
    assert body["results"] == [
        ["b", "2020-01-10T23:59:00+09:00", "2020-01-10", "2020-01-10T00:00:00+09:00", 23, "2020-01-10 23:59:00", 2],
        ["a", "2020-01-11T05:00:00+09:00", "2020-01-11", "2020-01-11T00:00:00+09:00", 5, "2020-01-11 05:00:00", 1],
    ]
    assert body["types"][1] == ["timestamp", "DateTime64(6, 'Asia/Tokyo')"]
    # Date strings are read in the team's timezone too.
    assert rows(api, team, "SELECT count() FROM events WHERE timestamp >= '2020-01-11'") == [[1]]
    assert rows(api, team, "SELECT count() FROM events WHERE toDate(timestamp) = today() - INTERVAL 4 DAY") == [[1]]


def test_daylight_saving_time_days(client, api_client):
    team = make_team(name="New York")
    team.timezone = "America/New_York"
    team.save()
    api = api_client(user=make_member(team))
    # 8 March 2020: clocks went forward at 2:00 (UTC-5 -> UTC-4).
    events(team, ("a", "n", "2020-03-08 04:30"), ("b", "n", "2020-03-08 07:30"), ("c", "n", "2020-03-09 03:30"))
    assert rows(api, team, "SELECT toDate(timestamp) AS d, count() FROM events GROUP BY d ORDER BY d") == [
        ["2020-03-07", 1], ["2020-03-08", 2]]
    assert rows(api, team, "SELECT toStartOfDay(timestamp) AS d, count() FROM events GROUP BY d ORDER BY d") == [
        ["2020-03-07T00:00:00-05:00", 1], ["2020-03-08T00:00:00-05:00", 2]]
    assert rows(api, team, "SELECT timestamp + INTERVAL 1 DAY, timestamp + INTERVAL 24 HOUR FROM events WHERE event = 'a'") == [
        ["2020-03-08T23:30:00-04:00", "2020-03-09T00:30:00-04:00"]]


def test_pagination_and_limits(client, team):
    events(team, *[("e", f"user{index:03}", "2020-01-10 10:00") for index in range(120)])
    body = sql(client, team, "SELECT distinct_id FROM events ORDER BY distinct_id")
    assert len(body["results"]) == 100 and body["results"][-1] == ["user099"]
    assert (body["hasMore"], body["limit"], body["offset"]) == (True, 100, 0)
    assert body["hogql"].endswith("LIMIT 100")
    body = sql(client, team, "SELECT distinct_id FROM events ORDER BY distinct_id OFFSET 110")
    assert len(body["results"]) == 10 and (body["hasMore"], body["offset"]) == (False, 110)
    body = sql(client, team, "SELECT distinct_id FROM events ORDER BY distinct_id LIMIT 5 OFFSET 10")
    assert body["results"] == [[f"user{index:03}"] for index in range(10, 15)]
    assert "hasMore" not in body and "limit" not in body
    body = sql(client, team, "SELECT a.distinct_id FROM events a, events b, events c LIMIT 100000")
    assert len(body["results"]) == 50_000
    assert body["hogql"].endswith("LIMIT 50000")
    assert rows(client, team, "SELECT count() FROM (SELECT * FROM events LIMIT 100000)") == [[120]]


def test_filters_placeholder(client, team, people):
    query = "SELECT event, count() FROM events WHERE {filters} GROUP BY event ORDER BY event"
    assert rows(client, team, query) == [["$pageview", 5], ["purchase", 1], ["signed up", 1]]
    filters = {"dateRange": {"date_from": "2020-01-10", "date_to": "2020-01-11"},
               "properties": [{"key": "$browser", "value": "Safari", "operator": "is_not", "type": "event"}]}
    assert rows(client, team, query, filters=filters) == [["$pageview", 1], ["signed up", 1]]
    person_filter = {"properties": [{"key": "email", "value": "bob", "operator": "icontains", "type": "person"}]}
    assert rows(client, team, query, filters=person_filter) == [["$pageview", 1], ["purchase", 1]]
    assert rows(client, team, query, filters={"dateRange": {"date_from": "-3d"}}) == [["$pageview", 2], ["purchase", 1]]
    assert rows(client, team, query, filters={"dateRange": {"date_from": "all"}}) == [["$pageview", 5], ["purchase", 1], ["signed up", 1]]
    team.test_account_filters = [{"key": "email", "value": "alice", "operator": "not_icontains", "type": "person"}]
    team.save()
    assert rows(client, team, query, filters={"filterTestAccounts": True}) == [["$pageview", 3], ["purchase", 1]]
    # Without the placeholder, filters do not apply (as in PostHog).
    assert rows(client, team, "SELECT count() FROM events", filters=filters) == [[7]]


def test_variables_and_values(client, team, people):
    variables = {"v1": {"variableId": "v1", "code_name": "browser", "value": "Chrome"},
                 "v2": {"variableId": "v2", "code_name": "nothing", "value": "x", "isNull": True}}
    assert rows(client, team, "SELECT count(), {variables.nothing} FROM events WHERE properties.$browser = {variables.browser}",
                variables=variables) == [[3, None]]
    assert rows(client, team, "SELECT count() FROM events WHERE distinct_id IN {ids} AND toFloat(properties.price) > {min}",
                values={"ids": ["alice", "bob"], "min": 6}) == [[1]]
    assert rows(client, team, "SELECT {text}", values={"text": "'; DROP TABLE events_event; --"}) == [["'; DROP TABLE events_event; --"]]


def test_other_teams_rows_are_never_visible(client, team, people):
    other = people["other"]
    queries = [
        "SELECT count() FROM events",
        "SELECT count() FROM events WHERE properties.price = 1000 OR person.properties.email LIKE '%evil%'",
        "SELECT count() FROM (SELECT * FROM (SELECT * FROM events)) WHERE distinct_id = 'mallory'",
        "WITH x AS (SELECT distinct_id FROM events) SELECT count() FROM x WHERE distinct_id = 'mallory'",
        "SELECT count() FROM events e JOIN persons p ON e.person_id = p.id WHERE p.properties.email = 'mallory@evil.example'",
        "SELECT count() FROM events e FULL OUTER JOIN persons p ON e.person_id = p.id WHERE e.distinct_id = 'mallory' "
        "OR p.properties.email = 'mallory@evil.example'",
        "SELECT count() FROM events e RIGHT JOIN persons p ON 1 = 1 WHERE p.properties.plan = 'pro' AND e.distinct_id = 'mallory'",
        "SELECT count() FROM (SELECT distinct_id FROM events UNION ALL SELECT distinct_id FROM person_distinct_ids) WHERE distinct_id = 'mallory'",
        "SELECT count() FROM events WHERE distinct_id IN (SELECT distinct_id FROM person_distinct_ids WHERE distinct_id = 'mallory')",
        "SELECT (SELECT count() FROM persons WHERE properties.email = 'mallory@evil.example')",
        "SELECT count() FROM events, persons WHERE persons.properties.email = 'mallory@evil.example'",
        "SELECT count() FROM events WHERE distinct_id = 'mallory'",
    ]
    assert [rows(client, team, query)[0][0] for query in queries] == [7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    other_person = str(next(iter(type(people["alice"]).objects.filter(team=other))).uuid)
    assert rows(client, team, f"SELECT count() FROM events WHERE person_id = '{other_person}'") == [[0]]
    assert rows(client, team, f"SELECT count() FROM persons WHERE id = '{other_person}'") == [[0]]
    # Another team's id in the URL is not this key's project.
    response = client.post(f"/api/projects/{other.id}/query/", {"query": {"kind": "HogQLQuery", "query": "SELECT 1"}}, format="json")
    assert response.status_code == 403


def test_data_visualization_node_returns_the_inner_response(client, team, people):
    query = {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "SELECT count() AS total FROM events"},
             "display": "BoldNumber", "chartSettings": {"goalLines": []}}
    response = client.post(f"/api/projects/{team.id}/query/", {"query": query}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["results"], body["columns"], body["types"]) == ([[7]], ["total"], [["total", "Int64"]])
    # Same source, same cache entry.
    again = client.post(f"/api/projects/{team.id}/query/", {"query": query["source"]}, format="json").json()
    assert again["is_cached"] is True and again["cache_key"] == body["cache_key"]


def test_sql_insight_result(client, team, people):
    query = {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "SELECT event, count() FROM events GROUP BY event ORDER BY event"}}
    created = client.post(f"/api/projects/{team.id}/insights/", {"name": "SQL", "query": query}, format="json")
    assert created.status_code == 201, created.content
    response = client.get(f"/api/projects/{team.id}/insights/{created.json()['id']}/?refresh=blocking")
    assert response.status_code == 200
    body = response.json()
    assert body["result"] == [["$pageview", 5], ["purchase", 1], ["signed up", 1]]
    assert body["columns"] == ["event", "count()"]
    assert body["types"] == [["event", "String"], ["count()", "Int64"]]
    assert body["hasMore"] is False
    assert body["hogql"] == "SELECT event, count() FROM events GROUP BY event ORDER BY event LIMIT 100"


def test_query_count_is_bounded(client, team, people, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        body = sql(client, team, "SELECT person_id, count() FROM events GROUP BY person_id ORDER BY 2 DESC")
    assert len(body["results"]) == 4


def test_interval_arithmetic_edges(client, team, people):
    assert rows(client, team, """
        SELECT toDate('2020-01-31') + INTERVAL 1 MONTH, toDate('2020-01-31') + INTERVAL 36 HOUR, now() - INTERVAL '2 day',
               dateSub('day', 1, today()), subtractHours(now(), 2), today() - toIntervalDay(toInt('3'))""") == [[
        "2020-02-29", "2020-02-01T12:00:00Z", "2020-01-13T12:00:00Z", "2020-01-14", "2020-01-15T10:00:00Z", "2020-01-12"]]
    assert rows(client, team, """
        SELECT timestamp - toIntervalDay(toInt(properties.price)), toDate(timestamp) - toIntervalMonth(toInt(properties.price))
        FROM events WHERE event = 'purchase'""") == [["2020-01-10T08:00:00Z", "2019-11-12"]]
    assert sql(client, team, "SELECT now() + INTERVAL 999999999 YEAR", 400)["detail"] == "The date is out of range."


NATIVE = [
    # (query, rows on ClickHouse)
    ("SELECT domain(properties.url), path(properties.url), extractURLParameter(properties.url, 'utm') FROM events "
     "WHERE event = 'visit'", [["example.com", "/a/b", "x"]]),
    ("SELECT splitByChar(',', properties.tags), length(splitByChar(',', properties.tags)) FROM events WHERE event = 'visit'",
     [[["red", "green", "blue"], 3]]),
    ("SELECT arrayStringConcat(arrayMap(x -> upper(x), arrayFilter(t -> t != 'green', splitByChar(',', properties.tags))), '+'), "
     "has(splitByChar(',', properties.tags), 'green'), arrayCount(t -> length(t) > 3, splitByChar(',', properties.tags)) "
     "FROM events WHERE event = 'visit'", [["RED+BLUE", True, 2]]),
    ("SELECT arrayMap(n -> n * 2, [1, 2, 3]), arrayElement(['a', 'b'], 2), indexOf([10, 20], 20), has([], 'x')",
     [[[2, 4, 6], "b", 2, False]]),
    ("SELECT floor(2.7), ceil(2.1), pow(2, 10), greatest(1, 5, 3), least(4, 2.5), sign(-3), lengthUTF8('héllo'), "
     "reverse('abc'), position('hello', 'l')", [[2.0, 3.0, 1024.0, 5.0, 2.5, -1, 5, "cba", 3]]),
    ("SELECT pow(10, 400), log(0), sqrt(-1), varSamp(2)", [[None, None, None, None]]),  # not finite: NULL
    # prices 10, 20 and 5.5: squared deviations sum to 110.1667, over 3 (population) and 2 (sample)
    ("SELECT round(stddevPop(properties.price), 4), round(varSamp(properties.price), 4) FROM events "
     "WHERE event = '$pageview' AND properties.price IS NOT NULL", [[6.0599, 55.0833]]),
]


@pytest.mark.parametrize(("query", "expected"), NATIVE, ids=["urls", "split", "lambdas", "array-literals", "numbers", "not-finite", "aggregates"])
def test_clickhouse_functions_run_natively_on_clickhouse_only(client, team, people, query, expected):
    events(team, ("visit", "bob", "2020-01-13 10:00", {"url": "https://example.com/a/b?utm=x#top", "tags": "red,green,blue"}))
    if clickhouse_enabled():
        assert rows(client, team, query) == expected
    else:
        body = sql(client, team, query, status=400)  # the other engines refuse them, naming what
        assert body["type"] == "validation_error"
        assert body["detail"].startswith("Unsupported function: ") or body["detail"].endswith(" is not supported in SQL insights.")


def test_clickhouse_function_signatures_are_checked(client, team, people):
    if not clickhouse_enabled():
        pytest.skip("ClickHouse functions")
    cases = {
        "SELECT has('abc', 'a')": "`has('abc', 'a')`: has needs an array, got a string.",
        "SELECT arrayMap('a', ['a'])": "`arrayMap('a', ['a'])`: arrayMap takes a one-argument lambda (x -> ...) and an array.",
        "SELECT arrayMap((x, y) -> x, ['a'])": "`arrayMap((x, y) -> x, ['a'])`: arrayMap takes a one-argument lambda (x -> ...) and an array.",
        "SELECT event, arrayMap(x -> concat(x, event), ['a']), count() FROM events GROUP BY event ORDER BY event LIMIT 1": None,
        "SELECT arrayMap(x -> [x], ['a'])": "`x -> [x]`: a lambda must return text, a number or a boolean, not a array:string.",
        "SELECT arrayMap(x -> count(), ['a'])": "Aggregate functions such as count() are not allowed in SELECT.",
        "SELECT splitByChar(',')": "Function splitbychar takes 2 argument(s), got 1.",
        "SELECT y": "Unknown field `y`.",
    }
    for query, detail in cases.items():
        if detail is None:  # lambdas over grouped columns are grouped
            assert rows(client, team, query) == [["$pageview", ["a$pageview"], 5]]
            continue
        assert sql(client, team, query.replace("SELECT y", "SELECT y FROM events"), status=400)["detail"] == detail, query
