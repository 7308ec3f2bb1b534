"""Groups in insights: `unique_group` and group math, group property filters and breakdowns, and
`aggregation_group_type_index` (groups as the actors) in funnels, retention and stickiness.

Fixture (UTC, 2020-01-01 .. 2020-01-03): group types company (0) and org (1); groups identified:
acme {industry: finance}, globex {industry: tech}; "initech" appears in events only.

  day    event                         $groups
  01-01  u1 $pageview 10:00            company acme
         u2 $pageview 11:00            company acme
         u3 $pageview 12:00            company globex
         u4 $pageview 13:00            -
         u1 signed_up 14:00            company acme
  01-02  u3 $pageview 10:00            company globex, org o1
         u3 signed_up 11:00            company initech
  01-03  u2 $pageview 10:00            company "" (no group: excluded from group counts)
"""
import pytest

from events.clickhouse import is_enabled as clickhouse_enabled
from events.clickhouse.mirror import mirror_groups
from groups.models import Group, GroupTypeMapping
from tests.queries.events import events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

RANGE = {"dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-03"}}


@pytest.fixture
def data(team):
    for index, name in enumerate(["company", "org"]):
        GroupTypeMapping.objects.create(team=team, project_id=team.project_id, group_type=name, group_type_index=index)
    groups = [
        Group.objects.create(team=team, group_type_index=0, group_key="acme", group_properties={"industry": "finance", "seats": 10}),
        Group.objects.create(team=team, group_type_index=0, group_key="globex", group_properties={"industry": "tech", "seats": 50}),
    ]
    if clickhouse_enabled():
        mirror_groups(groups)  # as ingestion and the groups API do
    acme, globex = {"$groups": {"company": "acme"}}, {"$groups": {"company": "globex"}}
    events(
        team,
        ("$pageview", "u1", "2020-01-01 10:00", acme),
        ("$pageview", "u2", "2020-01-01 11:00", acme),
        ("$pageview", "u3", "2020-01-01 12:00", globex),
        ("$pageview", "u4", "2020-01-01 13:00"),
        ("signed_up", "u1", "2020-01-01 14:00", acme),
        ("$pageview", "u3", "2020-01-02 10:00", {"$groups": {"company": "globex", "org": "o1"}}),
        ("signed_up", "u3", "2020-01-02 11:00", {"$groups": {"company": "initech"}}),
        ("$pageview", "u2", "2020-01-03 10:00", {"$groups": {"company": ""}}),
    )


def pageviews(**fields):
    return [{"kind": "EventsNode", "event": "$pageview", **fields}]


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({}, [4, 1, 1]),
        ({"math": "dau"}, [4, 1, 1]),
        ({"math": "unique_group", "math_group_type_index": 0}, [2, 1, 0]),
        ({"math": "unique_group", "math_group_type_index": 1}, [0, 1, 0]),
        ({"math": "dau", "math_group_type_index": 0}, [2, 1, 0]),
        ({"math": "weekly_active", "math_group_type_index": 0}, [2, 2, 2]),
        ({"math": "unique_group"}, [4, 1, 1]),  # without an index: a count of events
    ],
)
def test_group_math(data, trends, fields, expected):
    [result] = trends(pageviews(**fields), **RANGE)
    assert result["data"] == expected


def test_unique_group_cumulative_counts_each_group_once(data, trends):
    [result] = trends(pageviews(math="unique_group", math_group_type_index=0), trendsFilter={"display": "ActionsLineGraphCumulative"}, **RANGE)
    assert result["data"] == [2, 2, 2]


def test_unique_group_of_a_type_without_mapping_is_zero(data, trends):
    [result] = trends(pageviews(math="unique_group", math_group_type_index=3), **RANGE)
    assert result["data"] == [0, 0, 0]


def test_unique_group_total_value(data, trends):
    [result] = trends(pageviews(math="unique_group", math_group_type_index=0), trendsFilter={"display": "BoldNumber"}, **RANGE)
    assert result["aggregated_value"] == 2


@pytest.mark.parametrize(
    "prop, expected",
    [
        ({"key": "industry", "value": "finance"}, [2, 0, 0]),
        ({"key": "industry", "value": "finance", "operator": "is_not"}, [2, 1, 1]),
        ({"key": "seats", "value": 20, "operator": "gt"}, [1, 1, 0]),
        ({"key": "industry", "operator": "is_set"}, [3, 1, 0]),
    ],
)
def test_group_property_filters(data, trends, prop, expected):
    [result] = trends(pageviews(), properties=[{"type": "group", "group_type_index": 0, **prop}], **RANGE)
    assert result["data"] == expected


def test_group_property_filter_without_index_is_a_400(data, run_query):
    response = run_query({"kind": "TrendsQuery", "series": pageviews(), "properties": [{"type": "group", "key": "industry", "value": "x"}]},
                         refresh="force_blocking")
    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"


def test_group_breakdown(data, trends):
    results = trends(pageviews(), breakdownFilter={"breakdown_type": "group", "breakdown": "industry", "breakdown_group_type_index": 0}, **RANGE)
    assert {r["breakdown_value"]: r["data"] for r in results} == {
        "finance": [2, 0, 0], "tech": [1, 1, 0], "$$_posthog_breakdown_null_$$": [1, 0, 1],
    }


def test_group_breakdown_with_unique_group_math(data, trends):
    results = trends(pageviews(math="unique_group", math_group_type_index=0),
                     breakdownFilter={"breakdowns": [{"type": "group", "property": "industry", "group_type_index": 0}]}, **RANGE)
    assert {r["breakdown_value"][0] if isinstance(r["breakdown_value"], list) else r["breakdown_value"]: r["data"] for r in results} == {
        "finance": [1, 0, 0], "tech": [1, 1, 0],
    }


def funnel(**fields):
    return {"kind": "FunnelsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "signed_up"}],
            **RANGE, **fields}


def test_funnel_by_persons_and_by_groups(data, run_query):
    by_person = run_query(funnel(), refresh="force_blocking").json()["results"]
    assert [step["count"] for step in by_person] == [4, 2]
    response = run_query(funnel(aggregation_group_type_index=0), refresh="force_blocking")
    assert response.status_code == 200, response.json()
    # acme converts; globex's signup happened in initech; the "" group is no group.
    assert [step["count"] for step in response.json()["results"]] == [2, 1]


def funnel_by_value(body) -> dict:
    return {tuple(steps[0]["breakdown_value"]): [step["count"] for step in steps] for steps in body["results"]}


INDUSTRY = {"breakdown_type": "group", "breakdown": "industry", "breakdown_group_type_index": 0}


def test_funnel_group_breakdown(data, run_query):
    response = run_query(funnel(breakdownFilter=INDUSTRY), refresh="force_blocking")
    assert response.status_code == 200, response.json()
    # first touch: u1 and u2 start in acme (finance), u3 in globex (tech; its signup is in initech), u4 in no group.
    assert funnel_by_value(response.json()) == {("finance",): [2, 1], ("tech",): [1, 1], ("",): [1, 0]}
    listed = run_query(funnel(breakdownFilter={"breakdowns": [{"type": "group", "property": "industry", "group_type_index": 0}]}),
                       refresh="force_blocking")
    assert funnel_by_value(listed.json()) == funnel_by_value(response.json())


def test_funnel_group_breakdown_of_groups(data, run_query):
    body = run_query(funnel(breakdownFilter=INDUSTRY, aggregation_group_type_index=0), refresh="force_blocking").json()
    # acme converts; globex's signup was in initech; initech never viewed a page.
    assert funnel_by_value(body) == {("finance",): [1, 1], ("tech",): [1, 0]}


def test_funnel_group_breakdown_other(data, run_query):
    body = run_query(funnel(breakdownFilter={**INDUSTRY, "breakdown_limit": 1}), refresh="force_blocking").json()
    assert funnel_by_value(body) == {("finance",): [2, 1], ("Other",): [2, 1]}


def test_group_breakdown_without_index_is_a_400(data, run_query):
    for query in (funnel(breakdownFilter={"breakdown_type": "group", "breakdown": "industry"}),
                  {"kind": "RetentionQuery", "retentionFilter": {}, "breakdownFilter": {"breakdown_type": "group", "breakdown": "industry"}}):
        response = run_query(query, refresh="force_blocking")
        assert response.status_code == 400, response.json()
        assert "group_type_index missing" in response.json()["detail"]


def retention_rows(body) -> dict:
    rows: dict = {}
    for row in body["results"]:
        rows.setdefault(row["breakdown_value"], []).append([cell["count"] for cell in row["values"]])
    return rows


def test_retention_group_breakdown(data, run_query):
    query = {"kind": "RetentionQuery", "dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-03"}, "breakdownFilter": INDUSTRY,
             "retentionFilter": {"period": "Day", "totalIntervals": 3, "retentionType": "retention_first_time"}}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    # An actor counts under each breakdown value separately: u2's day-2 pageview has no company ("").
    assert retention_rows(response.json()) == {
        "finance": [[2, 0, 0], [0, 0, 0], [0, 0, 0]],
        "tech": [[1, 1, 0], [0, 0, 0], [0, 0, 0]],
        "": [[1, 0, 0], [0, 0, 0], [1, 0, 0]],
    }
    listed = {**query, "breakdownFilter": {"breakdowns": [{"type": "group", "property": "industry", "group_type_index": 0}]}}
    assert retention_rows(run_query(listed, refresh="force_blocking").json()) == retention_rows(response.json())
    by_groups = run_query({**query, "aggregation_group_type_index": 0}, refresh="force_blocking").json()
    assert retention_rows(by_groups) == {"finance": [[1, 0, 0], [0, 0, 0], [0, 0, 0]],
                                        "tech": [[1, 1, 0], [0, 0, 0], [0, 0, 0]]}


def test_retention_by_groups(data, run_query):
    query = {"kind": "RetentionQuery", "dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-03"}, "aggregation_group_type_index": 0,
             "retentionFilter": {"period": "Day", "totalIntervals": 3, "retentionType": "retention_first_time"}}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    # Day 0: acme and globex first seen, globex back on day 1; no group is first seen later ("" is none).
    assert [[cell["count"] for cell in row["values"]] for row in response.json()["results"]] == [[2, 1, 0], [0, 0, 0], [0, 0, 0]]


def test_stickiness_by_groups(data, run_query):
    query = {"kind": "StickinessQuery", "series": pageviews(math="unique_group", math_group_type_index=0), **RANGE}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    assert response.json()["results"][0]["data"] == [1, 1, 0]  # acme on one day, globex on two


def test_lifecycle_by_groups(data, team, run_query):
    from events.models import Person, PersonDistinctId
    from tests.queries.events import ts
    people = PersonDistinctId.objects.filter(team=team, distinct_id__in=["u1", "u2"]).values("person_id")
    Person.objects.filter(id__in=people).update(created_at=ts("2020-01-01 09:00"), version=1)
    if clickhouse_enabled():
        from events.clickhouse.mirror import mirror_persons

        mirror_persons(Person.objects.filter(id__in=people).values_list("id", flat=True))
    query = {"kind": "LifecycleQuery", "series": pageviews(), "aggregation_group_type_index": 0, **RANGE}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    by_status = {item["status"]: item["data"] for item in response.json()["results"]}
    # acme is new on day 1 (its persons u1 and u2 were created that day) and dormant on day 2; globex's persons
    # are older: resurrecting, returning, then dormant. Day 3's event has no company.
    assert by_status == {"new": [1.0, 0.0, 0.0], "resurrecting": [1.0, 0.0, 0.0], "returning": [0.0, 1.0, 0.0],
                         "dormant": [0.0, -1.0, -1.0]}


def test_group_key_as_event_property(data, trends):
    [result] = trends(pageviews(), properties=[{"type": "event", "key": "$group_0", "value": "globex"}], **RANGE)
    assert result["data"] == [1, 1, 0]
    results = trends(pageviews(), breakdownFilter={"breakdown": "$group_1"}, **RANGE)
    assert {r["breakdown_value"]: r["data"] for r in results} == {"o1": [0, 1, 0], "$$_posthog_breakdown_null_$$": [4, 0, 1]}
    [hogql] = trends(pageviews(), properties=[{"type": "hogql", "key": "properties.$group_0 = 'acme'"}], **RANGE)
    assert hogql["data"] == [2, 0, 0]


def test_group_types_are_read_once_per_query(data, run_query):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count(series, **fields):
        with CaptureQueriesContext(connection) as captured:
            response = run_query({"kind": "TrendsQuery", "series": series, **RANGE, **fields}, refresh="force_blocking")
        assert response.status_code == 200, response.json()
        return len(captured.captured_queries)

    plain = count(pageviews() * 4, compareFilter={"compare": True})
    grouped = count(pageviews(math="unique_group", math_group_type_index=0) * 4, compareFilter={"compare": True},
                    properties=[{"type": "group", "group_type_index": 1, "key": "x", "operator": "is_not_set"}])
    assert grouped <= plain + 1  # the mapping, once for 8 statements


# --- groups/related: actors sharing events with a group or a person (last 90 days) ------------------------


def related(client, team, **params):
    response = client.get(f"/api/projects/{team.id}/groups/related/", params)
    assert response.status_code == 200, response.json()
    return response.json()


@pytest.fixture
def org_o1(data, team):
    group = Group.objects.create(team=team, group_type_index=1, group_key="o1", group_properties={"name": "O One"})
    if clickhouse_enabled():
        mirror_groups([group])
    return group


def test_related_persons_of_a_group(org_o1, client, team, clock):
    from events.models import Person

    clock("2020-01-10 00:00")
    persons = related(client, team, group_type_index=0, id="acme")
    assert sorted(actor["distinct_ids"][0] for actor in persons) == ["u1", "u2"]  # acme's events have no org
    u1 = Person.objects.get(distinct_ids__distinct_id="u1")
    assert [actor for actor in persons if actor["distinct_ids"] == ["u1"]] == [{
        "type": "person", "id": str(u1.uuid), "uuid": str(u1.uuid), "name": "u1", "distinct_ids": ["u1"], "properties": {},
        "created_at": "2019-12-01T00:00:00Z", "is_identified": False, "matched_recordings": [], "value_at_data_point": None,
    }]
    # globex's person u3, and the org o1 of one of globex's events.
    globex = related(client, team, group_type_index=0, id="globex")
    assert [(actor["type"], actor.get("group_key") or actor["distinct_ids"][0]) for actor in globex] == [("person", "u3"), ("group", "o1")]
    assert globex[1] == {"type": "group", "id": "o1", "group_type_index": 1, "group_key": "o1", "properties": {"name": "O One"},
                         "created_at": globex[1]["created_at"], "matched_recordings": [], "value_at_data_point": None}


def test_related_groups_of_a_person(org_o1, client, team, clock):
    from events.models import Person

    clock("2020-01-10 00:00")
    u3 = Person.objects.get(distinct_ids__distinct_id="u3")
    # globex and initech (not identified: left out) of type 0, o1 of type 1; no persons for a person.
    assert [(a["group_type_index"], a["group_key"]) for a in related(client, team, id=str(u3.uuid))] == [(0, "globex"), (1, "o1")]
    assert related(client, team, id="00000000-0000-0000-0000-000000000000") == []
    assert related(client, team, id="not-a-uuid") == []
    clock("2020-04-05 00:00")  # more than 90 days after the events
    assert related(client, team, group_type_index=0, id="globex") == []


def test_related_needs_an_id(data, client, team):
    response = client.get(f"/api/projects/{team.id}/groups/related/?group_type_index=0")
    assert response.status_code == 400
    assert response.json()["attr"] == "id"
    bad = client.get(f"/api/projects/{team.id}/groups/related/?group_type_index=7&id=acme")
    assert bad.status_code == 400 and bad.json()["attr"] == "group_type_index"


def test_group_property_filters_in_sql_insights(org_o1, run_query):
    query = "SELECT event, count() FROM events WHERE {filters} GROUP BY event ORDER BY event"

    def counts(properties):
        response = run_query({"kind": "HogQLQuery", "query": query, "filters": {"properties": properties, "dateRange": {"date_from": "all"}}},
                             refresh="force_blocking")
        assert response.status_code == 200, response.json()
        return response.json()["results"]

    finance = [{"type": "group", "group_type_index": 0, "key": "industry", "value": "finance"}]
    assert counts(finance) == [["$pageview", 2], ["signed_up", 1]]
    # Two group types at once: globex's pageview in the org o1.
    both = [{"type": "group", "group_type_index": 0, "key": "industry", "value": "tech"},
            {"type": "group", "group_type_index": 1, "key": "name", "value": "O One"}]
    assert counts(both) == [["$pageview", 1]]
    unset = [{"type": "group", "group_type_index": 0, "key": "industry", "operator": "is_not_set"}]
    assert counts(unset) == [["$pageview", 2], ["signed_up", 1]]  # u4's and the "" company's pageviews, initech's signup


def test_related_stays_in_the_team(data, client, team, clock):
    from tests.factories import make_team

    clock("2020-01-10 00:00")
    other = make_team(team.organization, name="other")
    GroupTypeMapping.objects.create(team=other, project_id=other.project_id, group_type="company", group_type_index=0)
    GroupTypeMapping.objects.create(team=other, project_id=other.project_id, group_type="org", group_type_index=1)
    theirs = Group.objects.create(team=other, group_type_index=1, group_key="o9")
    if clickhouse_enabled():
        mirror_groups([theirs])
    events(other, ("$pageview", "mallory", "2020-01-05 10:00", {"$groups": {"company": "acme", "org": "o9"}}))
    assert sorted(actor["distinct_ids"][0] for actor in related(client, team, group_type_index=0, id="acme")) == ["u1", "u2"]
