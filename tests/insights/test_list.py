"""The insight list: envelope, pagination, every filter and ordering (spec §2)."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.utils import timezone

from insights.models import Insight
from tests.conftest import error
from tests.factories import make_member, make_team

from .conftest import BASIC_KEYS, FULL_KEYS, SQL_QUERY, TRENDS_QUERY, ids, make_dashboard, make_insight, put_on, view

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def test_envelope_and_default_order(client, base, team):
    # PostHog orders by the `order` column: NULLs last, then (here) by id.
    unordered = make_insight(team)
    second = make_insight(team, order=2)
    first = make_insight(team, order=1)
    response = client.get(base)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["count", "next", "previous", "results"]
    assert (body["count"], body["next"], body["previous"]) == (3, None, None)
    assert ids(response) == [first.id, second.id, unordered.id]
    assert list(body["results"][0]) == FULL_KEYS


def test_pagination(client, base, team):
    created = [make_insight(team, order=i).id for i in range(5)]
    page = client.get(base, {"limit": 2, "offset": 2}).json()
    assert page["count"] == 5
    assert [row["id"] for row in page["results"]] == created[2:4]
    assert page["next"] == f"http://testserver{base}?limit=2&offset=4"
    assert page["previous"] == f"http://testserver{base}?limit=2"


def test_default_page_size_is_100(client, base, team):
    Insight.objects.bulk_create([Insight(team=team, name=f"i{n}", query=TRENDS_QUERY, short_id=f"s{n:07d}") for n in range(101)])
    body = client.get(base).json()
    assert len(body["results"]) == 100
    assert body["next"] == f"http://testserver{base}?limit=100&offset=100"


@pytest.mark.parametrize("value", ["true", "1", "yes", "on", "Y", "t"])
def test_basic_true(client, base, team, value):
    make_insight(team)
    result = client.get(base, {"basic": value}).json()["results"][0]
    assert list(result) == BASIC_KEYS


@pytest.mark.parametrize("value", ["false", "0", "no", ""])
def test_basic_false(client, base, team, value):
    make_insight(team)
    assert list(client.get(base, {"basic": value}).json()["results"][0]) == FULL_KEYS


def test_environment_url_lists_the_same(client, team):
    insight = make_insight(team)
    assert ids(client.get(f"/api/environments/{team.id}/insights/")) == [insight.id]


def test_other_tenants_never_listed_but_sibling_environments_are(client, base, team):
    mine = make_insight(team)
    make_insight(make_team())  # another organization
    make_insight(make_team(team.organization))  # another project of the same organization
    sibling = make_team(team.organization)
    sibling.project = team.project
    sibling.save()
    theirs = make_insight(sibling)
    assert sorted(ids(client.get(base))) == [mine.id, theirs.id]


def test_deleted_insights_are_not_listed(client, base, team):
    live = make_insight(team)
    make_insight(team, deleted=True)
    assert ids(client.get(base)) == [live.id]


def test_short_id(client, base, team):
    wanted = make_insight(team)
    make_insight(team)
    assert ids(client.get(base, {"short_id": wanted.short_id})) == [wanted.id]
    assert ids(client.get(base, {"short_id": "nope"})) == []


def test_saved(client, base, team):
    saved = make_insight(team, saved=True)
    unsaved = make_insight(team, saved=False)
    on_dashboard = make_insight(team, saved=False)
    put_on(on_dashboard, make_dashboard(team))
    on_unlisted = make_insight(team, saved=False)
    put_on(on_unlisted, make_dashboard(team, creation_mode="unlisted"))
    on_removed_tile = make_insight(team, saved=False)
    put_on(on_removed_tile, make_dashboard(team), deleted=True)
    assert sorted(ids(client.get(base, {"saved": "true"}))) == [saved.id, on_dashboard.id]
    assert sorted(ids(client.get(base, {"saved": "false"}))) == sorted([unsaved.id, on_dashboard.id, on_unlisted.id, on_removed_tile.id])


@pytest.mark.parametrize("value", ["true", "false", ""])
def test_user_is_a_presence_flag(client, base, team, user, value):
    mine = make_insight(team, created_by=user)
    make_insight(team, created_by=make_member(team))
    make_insight(team, created_by=None)
    assert ids(client.get(base, {"user": value})) == [mine.id]


@pytest.mark.parametrize("value", ["true", "false"])
def test_favorited_is_a_presence_flag(client, base, team, value):
    favorite = make_insight(team, favorited=True)
    make_insight(team)
    assert ids(client.get(base, {"favorited": value})) == [favorite.id]


def test_created_by(client, base, team, user):
    other, third = make_member(team), make_member(team)
    mine = make_insight(team, created_by=user)
    theirs = make_insight(team, created_by=other)
    make_insight(team, created_by=third)
    assert sorted(ids(client.get(base, {"created_by": f"[{user.id}, {other.id}]"}))) == [mine.id, theirs.id]
    assert ids(client.get(base, {"created_by": str(other.id)})) == [theirs.id]  # a single id, as the OpenAPI types it
    assert len(ids(client.get(base, {"created_by": "[]"}))) == 3
    assert len(ids(client.get(base, {"created_by": ""}))) == 3


@pytest.mark.parametrize(
    "param, value, what",
    [
        ("created_by", "[1,", "user ids, e.g. [1, 42]"),
        ("created_by", '["a"]', "user ids, e.g. [1, 42]"),
        ("created_by", "[true]", "user ids, e.g. [1, 42]"),
        ("created_by", '{"id": 1}', "user ids, e.g. [1, 42]"),
        ("dashboards", "one", "dashboard ids, e.g. [1, 42]"),
        ("dashboards", "[1.5]", "dashboard ids, e.g. [1, 42]"),
        ("tags", "growth", 'tag names, e.g. ["marketing", "growth"]'),
        ("tags", "[1]", 'tag names, e.g. ["marketing", "growth"]'),
    ],
)
def test_json_list_params_must_be_valid(client, base, param, value, what):
    response = client.get(base, {param: value})
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", f"Must be a JSON array of {what}.", param)


def test_tags_match_any(client, base, team):
    both = make_insight(team, tags=["growth", "kpi"])
    growth = make_insight(team, tags=["growth"])
    make_insight(team, tags=["other"])
    make_insight(team)
    response = client.get(base, {"tags": '["growth", "kpi"]'})
    assert sorted(ids(response)) == [both.id, growth.id]  # each once
    assert response.json()["count"] == 2
    assert ids(client.get(base, {"tags": '"kpi"'})) == [both.id]
    assert len(ids(client.get(base, {"tags": "[]"}))) == 4


def test_dashboards_match_all(client, base, team):
    first, second = make_dashboard(team), make_dashboard(team)
    on_both = make_insight(team)
    put_on(on_both, first)
    put_on(on_both, second)
    on_first = make_insight(team)
    put_on(on_first, first)
    removed = make_insight(team)
    put_on(removed, first, deleted=True)
    assert sorted(ids(client.get(base, {"dashboards": f"[{first.id}]"}))) == [on_both.id, on_first.id]
    assert ids(client.get(base, {"dashboards": f"[{first.id}, {second.id}]"})) == [on_both.id]
    second.deleted = True
    second.save()
    assert ids(client.get(base, {"dashboards": f"[{second.id}]"})) == []


def test_last_modified_date_filters_are_strict(client, base, team):
    old = make_insight(team, last_modified_at=datetime(2025, 1, 1, tzinfo=dt_timezone.utc))
    middle = make_insight(team, last_modified_at=datetime(2025, 2, 1, 12, tzinfo=dt_timezone.utc))
    make_insight(team, last_modified_at=datetime(2025, 3, 1, tzinfo=dt_timezone.utc))
    assert ids(client.get(base, {"date_from": "2025-01-15", "date_to": "2025-02-15"})) == [middle.id]
    assert ids(client.get(base, {"date_from": "2024-12-01", "date_to": "2025-01-01T00:00:00Z"})) == []
    assert ids(client.get(base, {"date_to": "2025-1-2"})) == [old.id]  # unpadded dates too


def test_relative_dates(client, base, team):
    three_days = make_insight(team, last_modified_at=NOW - timedelta(days=3), created_at=NOW - timedelta(days=40))
    ten_days = make_insight(team, last_modified_at=NOW - timedelta(days=10), created_at=NOW - timedelta(hours=2))
    assert ids(client.get(base, {"date_from": "-7d"})) == [three_days.id]
    assert ids(client.get(base, {"date_to": "-7d"})) == [ten_days.id]
    assert sorted(ids(client.get(base, {"date_from": "-2w"}))) == [three_days.id, ten_days.id]
    assert ids(client.get(base, {"created_date_from": "-1m"})) == [ten_days.id]
    assert ids(client.get(base, {"created_date_to": "-24h"})) == [three_days.id]
    assert ids(client.get(base, {"created_date_from": "-3h"})) == [ten_days.id]
    assert ids(client.get(base, {"date_from": "-1y", "date_to": "-5dStart"})) == [ten_days.id]


def test_absolute_dates_are_in_the_team_timezone(client, base, team):
    insight = make_insight(team, last_modified_at=datetime(2025, 1, 1, 12, tzinfo=dt_timezone.utc))
    assert ids(client.get(base, {"date_from": "2025-01-02"})) == []
    team.timezone = "Pacific/Auckland"  # UTC+13 in January: 2025-01-02 starts at 2025-01-01T11:00Z
    team.save()
    assert ids(client.get(base, {"date_from": "2025-01-02"})) == [insight.id]
    assert ids(client.get(base, {"date_from": "2025-01-02T00:00:00+00:00"})) == []  # explicit offsets win


def test_last_viewed_date_filters(client, base, team, user):
    recent = make_insight(team)
    view(recent, user, NOW - timedelta(days=1))
    stale = make_insight(team)
    view(stale, user, NOW - timedelta(days=30))
    view(stale, make_member(team), NOW - timedelta(days=20))
    make_insight(team)  # never viewed: excluded by either bound
    assert ids(client.get(base, {"last_viewed_date_from": "-7d"})) == [recent.id]
    assert ids(client.get(base, {"last_viewed_date_to": "-7d"})) == [stale.id]
    # last_viewed_at is the latest view by anyone.
    listed = {row["id"]: row["last_viewed_at"] for row in client.get(base).json()["results"]}
    assert listed[stale.id].startswith((NOW - timedelta(days=20)).date().isoformat())


@pytest.mark.parametrize("param", ["date_from", "date_to", "created_date_from", "created_date_to", "last_viewed_date_from", "last_viewed_date_to"])
@pytest.mark.parametrize("value", ["yesterday", "2025-13-01", "-7x", "7 days"])
def test_bad_dates_are_400(client, base, param, value):
    response = client.get(base, {param: value})
    assert response.status_code == 400
    body = response.json()
    assert (body["type"], body["code"], body["attr"]) == ("validation_error", "invalid_input", param)
    assert body["detail"] == f"'{value}' is not a date. Use an ISO date such as 2025-04-23 or a relative date such as -7d."


def test_insight_type_filter(client, base, team):
    def viz(kind, **extra):
        return {"kind": "InsightVizNode", "source": {"kind": kind, "series": [], **extra}}

    made = {
        "TRENDS": make_insight(team, query=TRENDS_QUERY),
        "FUNNELS": make_insight(team, query=viz("FunnelsQuery")),
        "RETENTION": make_insight(team, query={"kind": "InsightVizNode", "source": {"kind": "RetentionQuery", "retentionFilter": {}}}),
        "PATHS": make_insight(team, query={"kind": "InsightVizNode", "source": {"kind": "PathsQuery", "pathsFilter": {}}}),
        "STICKINESS": make_insight(team, query=viz("StickinessQuery")),
        "LIFECYCLE": make_insight(team, query=viz("LifecycleQuery")),
        "SQL": make_insight(team, query=SQL_QUERY),
    }
    legacy_trends = make_insight(team, query=None, filters={"insight": "TRENDS"})
    legacy_other = make_insight(team, query=None, filters={"insight": "CUSTOM"})
    sql_table = make_insight(team, query={"kind": "DataTableNode", "source": {"kind": "HogQLQuery", "query": "select 1"}})
    events_table = make_insight(team, query={"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["*"]}})
    bare_trends = make_insight(team, query={"kind": "TrendsQuery", "series": []})
    bare_hogql = make_insight(team, query={"kind": "HogQLQuery", "query": "select 1"})
    trends_table = make_insight(team, query={"kind": "DataTableNode", "source": {"kind": "TrendsQuery", "series": []}})

    assert sorted(ids(client.get(base, {"insight": "TRENDS"}))) == [made["TRENDS"].id, legacy_trends.id]
    for kind in ("FUNNELS", "RETENTION", "PATHS", "STICKINESS", "LIFECYCLE"):
        assert ids(client.get(base, {"insight": kind})) == [made[kind].id], kind
    assert sorted(ids(client.get(base, {"insight": "SQL"}))) == [made["SQL"].id, sql_table.id]
    assert sorted(ids(client.get(base, {"insight": "JSON"}))) == [events_table.id, bare_trends.id, bare_hogql.id]
    assert trends_table.id not in ids(client.get(base, {"insight": "JSON"}))
    assert ids(client.get(base, {"insight": "CUSTOM"})) == [legacy_other.id]


@pytest.mark.parametrize(
    "order, expected",
    [
        ("name", ["a", "b", "c", None]),
        ("-name", [None, "c", "b", "a"]),
        ("-last_modified_at", ["b", "c", "a", None]),
        ("last_modified_at", [None, "a", "c", "b"]),
        ("created_by__email", ["c", "a", "b", None]),  # alice, bob, then no creator (by id)
        ("-last_viewed_at", ["c", "a", "b", None]),
        ("last_viewed_at", [None, "b", "a", "c"]),
    ],
)
def test_order(client, base, team, user, order, expected):
    alice, bob = make_member(team, email="alice@example.com"), make_member(team, email="bob@example.com")
    a = make_insight(team, name="a", created_by=bob, last_modified_at=NOW - timedelta(days=3))
    b = make_insight(team, name="b", created_by=None, last_modified_at=NOW - timedelta(days=1))
    c = make_insight(team, name="c", created_by=alice, last_modified_at=NOW - timedelta(days=2))
    make_insight(team, name=None, created_by=user, last_modified_at=NOW - timedelta(days=4))
    Insight.objects.filter(name=None).update(created_by=None)
    view(a, user, NOW - timedelta(hours=2))
    view(b, user, NOW - timedelta(hours=3))
    view(c, user, NOW - timedelta(hours=1))
    names = [row["name"] for row in client.get(base, {"order": order}).json()["results"]]
    assert names == expected


@pytest.mark.parametrize("order", ["nope", "-nope", "team__organization__name", "created_by__password", "query", "?"])
def test_unknown_order_is_400(client, base, order):
    response = client.get(base, {"order": order})
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", f"Cannot order by '{order}'.", "order")


# -- bad input never answers 500 ----------------------------------------------------------------


@pytest.mark.parametrize("param", ["date_from", "date_to", "created_date_from", "created_date_to", "last_viewed_date_from", "last_viewed_date_to"])
@pytest.mark.parametrize("value", ["-9999999999d", "-99999999y", "-999999999999w", "-99999999999999999999h", "-9" + "9" * 5000 + "d", "0001-01-01"])
def test_dates_out_of_range_are_400(client, base, team, param, value):
    team.timezone = "Pacific/Auckland"  # 0001-01-01 there is before year 1 in UTC
    team.save()
    make_insight(team)
    response = client.get(base, {param: value})
    assert response.status_code == 400
    assert response.json() == error(
        "validation_error", "invalid_input", f"'{value}' is out of range: dates must fall between the years 1 and 9999.", param
    )


def test_far_but_representable_dates_filter(client, base, team):
    insight = make_insight(team)
    assert ids(client.get(base, {"date_from": "-1000y"})) == [insight.id]
    assert ids(client.get(base, {"date_to": "9999-12-30"})) == [insight.id]


@pytest.mark.parametrize("param, value", [("created_by", f"[{2**64}]"), ("created_by", str(2**63)), ("dashboards", f"[1, {2**70}]"), ("created_by", "[-1]")])
def test_ids_beyond_64_bits_are_400(client, base, team, param, value):
    make_insight(team)
    response = client.get(base, {param: value})
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", f"Ids must be between 0 and {2**63 - 1}.", param)


def test_largest_id_is_accepted(client, base, team):
    make_insight(team)
    assert ids(client.get(base, {"created_by": str(2**63 - 1), "dashboards": f"[{2**63 - 1}]"})) == []


@pytest.mark.parametrize("param, value", [("short_id", "ab\x00cd"), ("insight", "TRENDS\x00"), ("tags", '["a\\u0000"]')])
def test_nul_bytes_in_text_params_are_400(client, base, team, param, value):
    make_insight(team)
    response = client.get(base, {param: value})
    assert response.status_code == 400
    assert response.json() == error("validation_error", "null_characters_not_allowed", "Null characters are not allowed.", param)


@pytest.mark.parametrize("params, count", [({"offset": str(2**64)}, 0), ({"limit": str(2**64)}, 1), ({"offset": "9" * 5000}, 1)])
def test_huge_pagination_values_never_500(client, base, team, params, count):
    make_insight(team)
    response = client.get(base, params)
    assert response.status_code == 200
    assert len(response.json()["results"]) == count


def test_schema_documents_every_list_filter(client):
    schema = client.get("/api/schema/?format=json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/projects/{project_id}/insights/"]["get"]["parameters"]}
    types = {name: p["schema"]["type"] for name, p in parameters.items() if p["in"] == "query"}
    assert types == {
        "basic": "boolean", "created_by": "integer", "created_date_from": "string", "created_date_to": "string", "dashboards": "string",
        "date_from": "string", "date_to": "string", "favorited": "boolean", "format": "string", "insight": "string",
        "last_viewed_date_from": "string", "last_viewed_date_to": "string", "limit": "integer", "offset": "integer",
        "order": "string", "refresh": "string", "saved": "boolean", "search": "string", "short_id": "string", "tags": "string",
        "user": "boolean",
    }
    assert "JSON array of user ids" in parameters["created_by"]["description"]
    assert parameters["insight"]["schema"]["enum"] == ["FUNNELS", "JSON", "LIFECYCLE", "PATHS", "RETENTION", "SQL", "STICKINESS", "TRENDS"]
    assert all(parameters[name].get("description") for name in types if name != "format")


@pytest.mark.parametrize("param", ["order", "date_from", "created_date_to"])
def test_a_percent_sign_in_a_refused_value_is_a_400(client, team, param):
    # Found by the schema fuzzer: a refused value echoed into its message with a `%` in it.
    response = client.get(f"/api/projects/{team.id}/insights/", {param: "%s%(x)s%"})
    assert response.status_code == 400
    body = response.json()
    assert (body["type"], body["attr"]) == ("validation_error", param)
    assert "%s%(x)s%" in body["detail"]
