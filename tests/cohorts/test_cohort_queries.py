"""Cohort membership and cohorts inside insights, as numbers (the same on SQLite and PostgreSQL).

Now is 2020-01-10 12:00 UTC. Persons:
  alice (pro, a@corp.com)  $pageview 01-09 x2, 01-08 x1        signed up 2019-06-01
  bob   (free)             $pageview 01-09 x1                   signed up 01-05
  carol (pro)              $pageview 2019-12-01 x1 (outside 7 days)
  dave  (no properties)    $pageview 01-09 x1, 01-07 x1
"""
import io

import pytest

from cohorts.calculation import calculate_cohort
from cohorts.models import Cohort, CohortPeople
from events.clickhouse import is_enabled as clickhouse_enabled
from events.clickhouse.mirror import mirror_persons
from tests.conftest import error
from tests.factories import make_team
from tests.queries.events import events, person

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

PRO = {"type": "person", "key": "plan", "operator": "exact", "value": "pro"}


def tree(*values, type_="AND"):
    return {"properties": {"type": type_, "values": list(values)}}


def performed(event="$pageview", days=7, **extra):
    return {"type": "behavioral", "key": event, "value": "performed_event", "event_type": "events", "time_value": days,
            "time_interval": "day", **extra}


@pytest.fixture
def people(team, clock):
    clock("2020-01-10 12:00")
    found = {
        "alice": person(team, "alice", properties={"plan": "pro", "email": "a@corp.com"}),
        "bob": person(team, "bob", properties={"plan": "free"}),
        "carol": person(team, "carol", properties={"plan": "pro"}),
        "dave": person(team, "dave"),
    }
    events(team,
           ("$pageview", "alice", "2020-01-09 10:00"), ("$pageview", "alice", "2020-01-09 11:00"), ("$pageview", "alice", "2020-01-08 10:00"),
           ("signed up", "alice", "2019-06-01 10:00"), ("signed up", "bob", "2020-01-05 10:00"),
           ("$pageview", "bob", "2020-01-09 10:00"),
           ("$pageview", "carol", "2019-12-01 10:00"),
           ("$pageview", "dave", "2020-01-09 12:00"), ("$pageview", "dave", "2020-01-07 12:00"),
           ("$pageview", "ghost", "2020-01-09 12:00"), personless=("ghost",))
    return found


def members(client, cohorts_url, cohort) -> list[str]:
    body = client.get(f"{cohorts_url}{cohort['id']}/persons/").json()
    return sorted(item["distinct_ids"][0] for item in body["results"])


# --- Membership -------------------------------------------------------------------------------------


@pytest.mark.parametrize("filters, expected", [
    (tree(PRO), ["alice", "carol"]),
    (tree({**PRO, "negation": True}), ["bob", "dave"]),
    (tree({"type": "person", "key": "plan", "operator": "is_set"}), ["alice", "bob", "carol"]),
    (tree({"type": "person", "key": "email", "operator": "icontains", "value": "CORP"}), ["alice"]),
    (tree(tree(PRO)["properties"], {"type": "AND", "values": [{"type": "person", "key": "plan", "operator": "exact", "value": "free"}]},
          type_="OR"), ["alice", "bob", "carol"]),
    (tree(PRO, performed()), ["alice"]),
    (tree(performed()), ["alice", "bob", "dave"]),
    (tree(performed(days=60)), ["alice", "bob", "carol", "dave"]),
    (tree(performed(negation=True)), ["carol"]),
    (tree(performed(explicit_datetime="2020-01-09")), ["alice", "bob", "dave"]),
    (tree(performed(explicit_datetime="-2d")), ["alice", "bob", "dave"]),
    (tree(performed(event_filters=[{"type": "person", "key": "plan", "operator": "exact", "value": "pro"}])), ["alice"]),
    (tree({**performed(), "value": "performed_event_multiple", "operator": "gte", "operator_value": 2}), ["alice", "dave"]),
    (tree({**performed(), "value": "performed_event_multiple", "operator": "eq", "operator_value": 1}), ["bob"]),
    (tree({**performed(), "value": "performed_event_multiple", "operator": "lt", "operator_value": 3}), ["bob", "dave"]),
    (tree({**performed("signed up", days=30), "value": "performed_event_first_time"}), ["bob"]),
    (tree({**performed("signed up", days=1, time_interval="year"), "value": "performed_event_first_time"}), ["alice", "bob"]),
])
def test_dynamic_membership(client, cohorts_url, make_cohort, people, filters, expected):
    cohort = make_cohort(filters=filters)
    assert members(client, cohorts_url, cohort) == expected
    assert cohort["count"] == len(expected)
    assert cohort["is_calculating"] is False and cohort["last_calculation"] is not None


def test_a_cohort_of_cohorts_reads_the_other_cohorts_members(client, cohorts_url, make_cohort, people):
    pro = make_cohort(filters=tree(PRO))
    active = make_cohort(filters=tree(performed()))
    both = make_cohort(filters=tree({"type": "cohort", "key": "id", "value": pro["id"]}, {"type": "cohort", "key": "id", "value": active["id"]}))
    inactive_pro = make_cohort(filters=tree({"type": "cohort", "key": "id", "value": pro["id"]},
                                            {"type": "cohort", "key": "id", "value": active["id"], "negation": True}))
    assert members(client, cohorts_url, both) == ["alice"]
    assert members(client, cohorts_url, inactive_pro) == ["carol"]


def test_recalculation_writes_a_new_version_and_drops_the_old(client, cohorts_url, make_cohort, people, team):
    cohort = make_cohort(filters=tree(PRO))
    people["bob"].properties = {"plan": "pro"}
    people["bob"].version += 1
    people["bob"].save()
    if clickhouse_enabled():
        mirror_persons([people["bob"].id])  # as ingestion does
    calculate_cohort(cohort["id"])
    stored = Cohort.objects.get(id=cohort["id"])
    assert (stored.version, stored.count) == (2, 3)
    assert set(CohortPeople.objects.filter(cohort=stored).values_list("version", flat=True)) == {2}
    assert members(client, cohorts_url, cohort) == ["alice", "bob", "carol"]


def test_a_failing_calculation_is_recorded(client, cohorts_url, make_cohort, people):
    pro = make_cohort(filters=tree(PRO))
    referring = make_cohort(filters=tree({"type": "cohort", "key": "id", "value": pro["id"]}))
    Cohort.objects.filter(id=pro["id"]).update(deleted=True)
    calculate_cohort(referring["id"])
    stored = Cohort.objects.get(id=referring["id"])
    assert (stored.errors_calculating, stored.is_calculating, stored.count) == (1, False, 2)  # the last good count stays
    assert stored.last_error == "Invalid Cohort ID in filter"


# --- In insights --------------------------------------------------------------------------------------


@pytest.fixture
def cohorts(make_cohort, people, client, cohorts_url, team):
    pro = make_cohort(name="Pro", filters=tree(PRO))
    heavy = make_cohort(name="Heavy", filters=tree({**performed(), "value": "performed_event_multiple", "operator": "gte", "operator_value": 2}))
    csv = io.BytesIO(b"bob\ncarol\nnobody\n")
    csv.name = "ids.csv"
    static = client.post(cohorts_url, {"name": "Listed", "is_static": "true", "csv": csv}, format="multipart").json()
    return {"pro": pro["id"], "heavy": heavy["id"], "static": static["id"]}


def cohort_filter(cohort_id, operator="in"):
    return {"type": "cohort", "key": "id", "value": cohort_id, "operator": operator}


WEEK = {"date_from": "2020-01-07", "date_to": "2020-01-10"}


@pytest.mark.parametrize("name, operator, expected", [
    ("pro", "in", [0, 1, 2, 0]),          # alice
    ("pro", "not_in", [1, 0, 3, 0]),      # bob, dave and the personless ghost
    ("heavy", "in", [1, 1, 3, 0]),        # alice, dave
    ("static", "in", [0, 0, 1, 0]),       # bob (carol has no event in the range)
    ("static", "not_in", [1, 1, 4, 0]),
])
def test_trends_cohort_filter(trends, cohorts, name, operator, expected):
    results = trends(dateRange=WEEK, properties=[cohort_filter(cohorts[name], operator)])
    assert results[0]["data"] == expected


def test_legacy_cohort_filter_types_and_negation(trends, cohorts):
    static = trends(dateRange=WEEK, properties=[{"type": "static-cohort", "key": "id", "value": cohorts["static"]}])
    negated = trends(dateRange=WEEK, properties=[{"type": "precalculated-cohort", "key": "id", "value": cohorts["pro"], "negation": True}])
    assert static[0]["data"] == [0, 0, 1, 0] and negated[0]["data"] == [1, 0, 3, 0]


def test_series_cohort_filter_and_dau(trends, cohorts):
    series = [{"kind": "EventsNode", "event": "$pageview", "math": "dau", "properties": [cohort_filter(cohorts["heavy"])]}]
    assert trends(series, dateRange=WEEK)[0]["data"] == [1, 1, 2, 0]


def test_trends_cohort_breakdown(trends, cohorts):
    results = trends(dateRange=WEEK, breakdownFilter={"breakdown_type": "cohort", "breakdown": [cohorts["pro"], cohorts["static"], "all"]})
    assert [(r["breakdown_value"], r["label"], r["data"]) for r in results] == [
        (cohorts["pro"], "Pro", [0, 1, 2, 0]),
        (cohorts["static"], "Listed", [0, 0, 1, 0]),
        ("all", "all users", [1, 1, 5, 0]),
    ]


def test_trends_cohort_breakdown_of_several_series_totals(trends, cohorts):
    series = [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "$pageview", "math": "dau"}]
    results = trends(series, dateRange=WEEK, trendsFilter={"display": "ActionsTable"},
                     breakdownFilter={"breakdown_type": "cohort", "breakdown": cohorts["heavy"]})
    assert [(r["breakdown_value"], r["label"], r["aggregated_value"]) for r in results] == [
        (cohorts["heavy"], "$pageview - Heavy", 5), (cohorts["heavy"], "$pageview - Heavy", 2)]


def test_cohort_breakdown_with_a_formula(trends, cohorts):
    series = [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "$pageview", "math": "dau"}]
    results = trends(series, dateRange=WEEK, trendsFilter={"formula": "A - B"},
                     breakdownFilter={"breakdown_type": "cohort", "breakdown": [cohorts["pro"], "all"]})
    assert sorted((str(r["breakdown_value"]), r["data"]) for r in results) == sorted(
        [(str(cohorts["pro"]), [0, 0, 1, 0]), ("all", [0, 0, 1, 0])])


def test_funnel_with_a_cohort_filter(run_query, cohorts):
    query = {"kind": "FunnelsQuery", "dateRange": {"date_from": "2019-01-01", "date_to": "2020-01-10"},
             "series": [{"kind": "EventsNode", "event": "signed up"}, {"kind": "EventsNode", "event": "$pageview"}]}
    everyone = run_query(query, refresh="force_blocking").json()["results"]
    pro = run_query({**query, "properties": [cohort_filter(cohorts["pro"])]}, refresh="force_blocking").json()["results"]
    assert [step["count"] for step in everyone] == [2, 1]  # alice signed up months before her pageviews
    assert [step["count"] for step in pro] == [1, 0]


def test_funnel_cohort_breakdown(run_query, cohorts):
    """One funnel per cohort: `breakdown` is the cohort's name, `breakdown_value` its id (0 for all users)."""
    query = {"kind": "FunnelsQuery", "dateRange": {"date_from": "2019-01-01", "date_to": "2020-01-10"},
             "series": [{"kind": "EventsNode", "event": "signed up"}, {"kind": "EventsNode", "event": "$pageview"}],
             "breakdownFilter": {"breakdown_type": "cohort", "breakdown": [cohorts["pro"], cohorts["static"], cohorts["heavy"], "all"]}}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    assert [[(step["breakdown"], step["breakdown_value"], step["count"]) for step in funnel] for funnel in response.json()["results"]] == [
        [("all users", 0, 2), ("all users", 0, 1)],
        [("Listed", cohorts["static"], 1), ("Listed", cohorts["static"], 1)],   # bob
        [("Pro", cohorts["pro"], 1), ("Pro", cohorts["pro"], 0)],               # alice, months before her pageviews
        [("Heavy", cohorts["heavy"], 1), ("Heavy", cohorts["heavy"], 0)],       # alice
    ]
    # Bob signs up on 01-05 and converts on 01-09; alice's sign-up is outside the range.
    trends = run_query({**query, "dateRange": {"date_from": "2020-01-04", "date_to": "2020-01-09"},
                        "funnelsFilter": {"funnelVizType": "trends"}}, refresh="force_blocking").json()["results"]
    converted = [0, 100.0, 0, 0, 0, 0]
    assert [(item["breakdown_value"], item["data"]) for item in trends] == [
        (cohorts["pro"], [0] * 6), (cohorts["static"], converted), (cohorts["heavy"], [0] * 6), (0, converted)]


def test_retention_cohort_breakdown(run_query, cohorts):
    """The matrix once per cohort, each row with the cohort's id (or "all") as `breakdown_value`.
    Active days: alice 01-08 and 01-09, bob 01-09, dave 01-07 and 01-09, the personless ghost 01-09."""
    query = {"kind": "RetentionQuery", "dateRange": {"date_from": "2020-01-07", "date_to": "2020-01-09"},
             "retentionFilter": {"period": "Day", "totalIntervals": 3, "retentionType": "retention_recurring",
                                 "targetEntity": {"id": "$pageview", "type": "events"},
                                 "returningEntity": {"id": "$pageview", "type": "events"}},
             "breakdownFilter": {"breakdown_type": "cohort", "breakdown": [cohorts["heavy"], cohorts["static"], "all"]}}
    response = run_query(query, refresh="force_blocking")
    assert response.status_code == 200, response.json()
    rows = [(row["breakdown_value"], row["label"], [cell["count"] for cell in row["values"]]) for row in response.json()["results"]]
    assert rows == [
        (cohorts["heavy"], "Day 0", [1, 0, 1]), (cohorts["heavy"], "Day 1", [1, 1, 0]), (cohorts["heavy"], "Day 2", [2, 0, 0]),
        (cohorts["static"], "Day 0", [0, 0, 0]), (cohorts["static"], "Day 1", [0, 0, 0]), (cohorts["static"], "Day 2", [1, 0, 0]),
        ("all", "Day 0", [1, 0, 1]), ("all", "Day 1", [1, 1, 0]), ("all", "Day 2", [4, 0, 0]),
    ]


def test_stickiness_and_lifecycle_with_a_cohort_filter(run_query, cohorts):
    base = {"dateRange": WEEK, "series": [{"kind": "EventsNode", "event": "$pageview"}], "properties": [cohort_filter(cohorts["heavy"])]}
    stickiness = run_query({"kind": "StickinessQuery", **base}, refresh="force_blocking").json()["results"]
    assert stickiness[0]["data"][:3] == [0, 2, 0]  # alice and dave, each on 2 days
    lifecycle = run_query({"kind": "LifecycleQuery", **base}, refresh="force_blocking")
    assert lifecycle.status_code == 200, lifecycle.json()


@pytest.mark.parametrize("value", [999_999, "not-a-number"])
def test_unknown_cohort_is_a_400(run_query, cohorts, value):
    response = run_query({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}],
                          "properties": [cohort_filter(value)]}, refresh="force_blocking")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", f"Could not find cohort with ID {value}")


def test_deleted_and_other_teams_cohorts_are_never_read(client, run_query, cohorts, cohorts_url):
    other_team = make_team(name="other")
    foreign = Cohort.objects.create(team=other_team, name="foreign", filters=tree(PRO))
    client.patch(f"{cohorts_url}{cohorts['pro']}/", {"deleted": True}, format="json")
    for cohort_id in (foreign.id, cohorts["pro"]):
        for where in ({"properties": [cohort_filter(cohort_id)]}, {"breakdownFilter": {"breakdown_type": "cohort", "breakdown": [cohort_id]}}):
            response = run_query({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], **where},
                                 refresh="force_blocking")
            assert response.status_code == 400
            assert response.json()["detail"] == f"Could not find cohort with ID {cohort_id}"


# --- SQL insights ---------------------------------------------------------------------------------------


def sql_rows(run_query, query: str, status: int = 200):
    response = run_query({"kind": "HogQLQuery", "query": query}, refresh="force_blocking")
    assert response.status_code == status, response.json()
    return response.json()["results"] if status == 200 else response.json()


def test_sql_in_cohort_by_id_and_name(run_query, cohorts):
    by_id = f"SELECT distinct_id, count() FROM events WHERE person_id IN COHORT {cohorts['heavy']} GROUP BY distinct_id ORDER BY distinct_id"
    assert sql_rows(run_query, by_id) == [["alice", 4], ["dave", 2]]  # every event of theirs
    by_name = "SELECT count() FROM events WHERE event = '$pageview' AND person_id NOT IN COHORT 'Pro'"
    assert sql_rows(run_query, by_name) == [[4]]  # bob, dave x2 and the personless ghost
    persons = f"SELECT count() FROM persons WHERE id IN COHORT {cohorts['static']}"
    assert sql_rows(run_query, persons) == [[2]]


@pytest.mark.parametrize("query, detail", [
    ("SELECT 1 FROM events WHERE person_id IN COHORT 999999", "Could not find cohort with ID 999999"),
    ("SELECT 1 FROM events WHERE person_id IN COHORT 'nope'", "Could not find a cohort with the name 'nope'"),
    ("SELECT 1 FROM events WHERE distinct_id IN COHORT 1", "`distinct_id IN COHORT 1`: IN COHORT needs a person id (person_id, person.id or persons.id)."),
])
def test_sql_in_cohort_errors(run_query, cohorts, query, detail):
    assert sql_rows(run_query, query, status=400)["detail"] == detail


def test_sql_in_cohort_name_must_be_unique(run_query, cohorts, make_cohort):
    make_cohort(name="Pro", filters=tree(PRO))
    body = sql_rows(run_query, "SELECT 1 FROM events WHERE person_id IN COHORT 'Pro'", status=400)
    assert body["detail"] == "Found multiple cohorts with name 'Pro'"


def test_cohort_breakdown_without_cohorts_is_no_breakdown(trends, cohorts):
    results = trends(dateRange=WEEK, breakdownFilter={"breakdown_type": "cohort", "breakdown": None})
    assert [r["data"] for r in results] == [[1, 1, 5, 0]] and "breakdown_value" not in results[0]


def test_huge_cohort_ids_are_not_found(run_query, cohorts):
    response = run_query({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}],
                          "properties": [cohort_filter(10**30)]}, refresh="force_blocking")
    assert response.status_code == 400 and response.json()["detail"] == f"Could not find cohort with ID {10**30}"


def test_static_edits_and_copies_reach_the_queries(client, cohorts_url, cohorts, people, trends):
    """Removing a static member and duplicating a dynamic cohort as static change what insights
    count (on ClickHouse: through the cohortpeople mirror)."""
    response = client.patch(f"{cohorts_url}{cohorts['static']}/remove_person_from_static_cohort/",
                            {"person_id": str(people["bob"].uuid)}, format="json")
    assert response.status_code == 200, response.json()
    [result] = trends(properties=[cohort_filter(cohorts["static"])], dateRange=WEEK)
    assert result["data"] == [0, 0, 0, 0]
    copy = client.get(f"{cohorts_url}{cohorts['pro']}/duplicate_as_static_cohort/").json()
    [result] = trends(properties=[cohort_filter(copy["id"])], dateRange=WEEK)
    assert result["data"] == [0, 1, 2, 0]  # alice, as the "pro" cohort


def test_a_changed_cohort_is_not_served_from_the_cache(client, cohorts_url, cohorts, people, run_query):
    """The cohorts a query filters or breaks down by are part of its cache key: a recalculated
    dynamic cohort or an edited static one gives fresh results, not the cached ones."""
    def data(query):
        response = run_query(query, refresh="blocking")
        assert response.status_code == 200, response.json()
        return [row["data"] for row in response.json()["results"]], response.json()["is_cached"]

    series = [{"kind": "EventsNode", "event": "$pageview"}]
    filtered = {"kind": "TrendsQuery", "series": series, "dateRange": WEEK, "properties": [cohort_filter(cohorts["pro"])]}
    broken_down = {"kind": "TrendsQuery", "series": series, "dateRange": WEEK,
                   "breakdownFilter": {"breakdown_type": "cohort", "breakdown": [cohorts["static"]]}}
    sql = {"kind": "HogQLQuery", "query": "select count() from events where event = '$pageview' and person_id in cohort 'Pro'"}
    assert data(filtered) == ([[0, 1, 2, 0]], False)
    assert data(filtered) == ([[0, 1, 2, 0]], True)
    assert data(broken_down) == ([[0, 0, 1, 0]], False)
    assert run_query(sql, refresh="blocking").json()["results"] == [[4]]  # alice 3, carol 1

    people["bob"].properties = {"plan": "pro"}
    people["bob"].version += 1
    people["bob"].save()
    if clickhouse_enabled():
        mirror_persons([people["bob"].id])
    calculate_cohort(cohorts["pro"])
    client.patch(f"{cohorts_url}{cohorts['static']}/remove_person_from_static_cohort/", {"person_id": str(people["bob"].uuid)},
                 format="json")
    assert data(filtered) == ([[0, 1, 3, 0]], False)
    assert data(broken_down) == ([[0, 0, 0, 0]], False)
    assert run_query(sql, refresh="blocking").json()["results"] == [[5]]


# --- Static cohorts from a query ----------------------------------------------------------------------


def hogql(text):
    return {"kind": "HogQLQuery", "query": text}


def test_static_cohort_from_a_query(client, cohorts_url, people, trends):
    """The persons of the query's first column (personless rows left out), inserted by one statement;
    a new query adds its persons to the members."""
    response = client.post(cohorts_url, {"name": "Recent", "is_static": True,
                                         "query": hogql("select person_id from events where timestamp >= '2020-01-08'")}, format="json")
    assert response.status_code == 201, response.json()
    cohort = client.get(f"{cohorts_url}{response.json()['id']}/").json()
    assert (cohort["count"], cohort["is_calculating"], cohort["query"]["kind"]) == (3, False, "HogQLQuery")
    assert members(client, cohorts_url, cohort) == ["alice", "bob", "dave"]
    [result] = trends(dateRange=WEEK, properties=[cohort_filter(cohort["id"])])
    assert result["data"] == [1, 1, 4, 0]
    response = client.patch(f"{cohorts_url}{cohort['id']}/", {"query": hogql("select id from persons where properties.plan = 'pro'")},
                            format="json")
    assert response.status_code == 200, response.json()
    assert members(client, cohorts_url, cohort) == ["alice", "bob", "carol", "dave"]
    assert response.json()["count"] == 4


@pytest.mark.parametrize("query", [
    hogql("select event from events"),
    {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]},
    "select person_id from events",
])
def test_static_cohort_queries_must_select_person_ids(client, cohorts_url, people, query):
    response = client.post(cohorts_url, {"name": "c", "is_static": True, "query": query}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input",
                                    "Static cohorts from a query take a HogQLQuery whose first column is a person id "
                                    "(e.g. `select person_id from events where ...`).", "query")


def test_static_cohort_query_errors_are_400s(client, cohorts_url, people):
    response = client.post(cohorts_url, {"name": "c", "is_static": True, "query": hogql("select person_id from nowhere")}, format="json")
    assert response.status_code == 400
    assert response.json()["attr"] == "query"
