"""`bulk_update_tags`, `generate_metadata` and `timing` on insights (spec/vocabulary.md §8)."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.models import ActivityLog
from insights.models import Tag
from tests.conftest import error
from tests.factories import make_team

from .conftest import make_insight

pytestmark = pytest.mark.django_db

NOT_SUPPORTED = error("authentication_error", "permission_denied", "This action does not support Personal API Key access")


def tags_of(client, base, insight):
    return client.get(f"{base}{insight.id}/").json()["tags"]


# --- bulk_update_tags --------------------------------------------------------------------------


@pytest.fixture
def tagged(team):
    return [make_insight(team, name="One", tags=["a", "b"]), make_insight(team, name="Two", tags=["b"]), make_insight(team, name="Three")]


def bulk(client, base, **body):
    return client.post(f"{base}bulk_update_tags/", body, format="json")


def test_add_normalises_and_unions(client, base, tagged):
    one, two, three = tagged
    response = bulk(client, base, ids=[one.id, two.id, three.id], action="add", tags=[" C ", "b", "c"])
    assert response.status_code == 200
    assert response.json() == {"updated": [{"id": one.id, "tags": ["a", "b", "c"]}, {"id": two.id, "tags": ["b", "c"]},
                                           {"id": three.id, "tags": ["b", "c"]}], "skipped": []}
    assert tags_of(client, base, three) == ["b", "c"]


def test_remove_and_set_and_orphans_are_deleted(client, base, team, tagged):
    one, two, three = tagged
    assert bulk(client, base, ids=[one.id], action="remove", tags=["A"]).json()["updated"] == [{"id": one.id, "tags": ["b"]}]
    assert not Tag.objects.filter(team=team, name="a").exists()
    body = bulk(client, base, ids=[one.id, two.id], action="set", tags=["x"]).json()
    assert body["updated"] == [{"id": one.id, "tags": ["x"]}, {"id": two.id, "tags": ["x"]}]
    assert sorted(Tag.objects.filter(team=team).values_list("name", flat=True)) == ["x"]
    assert bulk(client, base, ids=[one.id], action="set", tags=[]).json()["updated"] == [{"id": one.id, "tags": []}]


def test_unknown_deleted_and_foreign_ids_are_skipped(client, base, team, tagged):
    one = tagged[0]
    deleted = make_insight(team, name="Gone", deleted=True)
    foreign = make_insight(make_team(name="Elsewhere"), name="Foreign")
    body = bulk(client, base, ids=[one.id, deleted.id, foreign.id, 999999, one.id], action="add", tags=["z"]).json()
    assert body == {"updated": [{"id": one.id, "tags": ["a", "b", "z"]}],
                    "skipped": [{"id": deleted.id, "reason": "Not found"}, {"id": foreign.id, "reason": "Not found"},
                                {"id": 999999, "reason": "Not found"}]}
    assert not foreign.tagged_items.exists()


def test_activity_is_logged_per_changed_insight(client, base, team, tagged):
    one, two, _ = tagged
    bulk(client, base, ids=[one.id, two.id], action="add", tags=["a"])
    entries = ActivityLog.objects.filter(team=team, scope="Insight", activity="updated")
    assert [(entry.item_id, entry.detail["changes"]) for entry in entries] == [
        (str(two.id), [{"type": "Insight", "action": "changed", "field": "tags", "before": ["b"], "after": ["a", "b"]}])]


def test_query_count_does_not_grow_with_the_number_of_insights(client, base, team):
    def queries_for(count):
        insights = [make_insight(team, name=f"I{i}") for i in range(count)]
        with CaptureQueriesContext(connection) as captured:
            assert bulk(client, base, ids=[i.id for i in insights], action="set", tags=["q"]).status_code == 200
        return len(captured) - count  # one activity entry per changed insight

    queries_for(1)  # warm up: the key's first use is recorded once
    assert queries_for(2) == queries_for(12)


@pytest.mark.parametrize("body, attr, detail", [
    ({"ids": [], "action": "add", "tags": ["a"]}, "ids", "Ensure this field has at least 1 elements."),
    ({"ids": list(range(1, 502)), "action": "add", "tags": ["a"]}, "ids", "Ensure this field has no more than 500 elements."),
    ({"ids": [1], "action": "merge", "tags": ["a"]}, "action", '"merge" is not a valid choice.'),
    ({"ids": [1], "action": "add", "tags": []}, "tags", "tags must not be empty for action 'add'."),
    ({"ids": [1], "action": "remove", "tags": []}, "tags", "tags must not be empty for action 'remove'."),
    ({"ids": ["x"], "action": "add", "tags": ["a"]}, "ids__0", "A valid integer is required."),
])
def test_invalid_bodies(client, base, body, attr, detail):
    response = bulk(client, base, **body)
    assert response.status_code == 400
    assert response.json()["attr"] == attr and response.json()["detail"] == detail


def test_bulk_update_tags_scope(team, user, base, tagged, api_client):
    response = bulk(api_client(["insight:read"], user=user), base, ids=[tagged[0].id], action="add", tags=["a"])
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "API key missing required scope 'insight:write'")
    assert bulk(api_client(["insight:write"], user=user), base, ids=[tagged[0].id], action="add", tags=["a"]).status_code == 200


# --- generate_metadata -------------------------------------------------------------------------


def metadata(client, base, query):
    return client.post(f"{base}generate_metadata/", {"query": query} if query is not None else {}, format="json")


@pytest.mark.parametrize("query, expected", [
    ({"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [
        {"kind": "EventsNode", "event": "$pageview", "math": "dau"}, {"kind": "EventsNode", "event": "signed up"}],
        "breakdownFilter": {"breakdown": "$browser"}, "dateRange": {"date_from": "-30d"}, "interval": "week"}},
     {"name": "$pageview (unique users) and signed up count by $browser",
      "description": "Trend of $pageview (unique users) and signed up count over the last 30 days, per week, broken down by $browser."}),
    ({"kind": "InsightVizNode", "source": {"kind": "FunnelsQuery", "series": [
        {"kind": "EventsNode", "event": "viewed"}, {"kind": "EventsNode", "event": "paid", "custom_name": "Checkout"}],
        "properties": [{"key": "$browser", "value": "Chrome", "operator": "exact", "type": "event"}]}},
     {"name": "viewed → Checkout funnel",
      "description": "Conversion through 2 steps (viewed → Checkout) over the last 7 days. With 1 property filter."}),
    ({"kind": "InsightVizNode", "source": {"kind": "RetentionQuery", "retentionFilter": {
        "targetEntity": {"id": "signed up", "kind": "EventsNode", "name": "signed up"},
        "returningEntity": {"id": "$pageview", "kind": "EventsNode", "name": "$pageview"}, "period": "Week"}}},
     {"name": "Retention: signed up then $pageview",
      "description": "Share of users who did signed up and came back to do $pageview, per week over the last 7 days."}),
    ({"kind": "EventsQuery", "select": ["event", "timestamp"], "event": "$pageview"},
     {"name": "$pageview events", "description": "A table of `$pageview` events with the columns event, timestamp."}),
])
def test_generate_metadata_is_deterministic_without_an_llm(client, base, query, expected):
    response = metadata(client, base, query)
    assert response.status_code == 200, response.content
    assert response.json() == expected
    assert metadata(client, base, query).json() == expected


@pytest.mark.parametrize("query, detail", [
    (None, "Missing 'query' field in request body"),
    ({"kind": "TrendsQuery", "series": []}, "Invalid query format"),
    ({"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": "nope"}}, "Invalid query format"),
    ("select 1", "Invalid query format"),
])
def test_generate_metadata_400s(client, base, query, detail):
    response = metadata(client, base, query)
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", detail)


def test_generate_metadata_scope(team, user, base, api_client):
    query = {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "x"}]}}
    response = metadata(api_client(["insight:read"], user=user), base, query)
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "API key missing required scope 'insight:write'")
    assert metadata(api_client(["insight:write"], user=user), base, query).json()["name"] == "x count"


# --- timing --------------------------------------------------------------------------------------


def test_timing_accepts_and_returns_201_with_no_body(base, unscoped_client):
    response = unscoped_client.post(f"{base}timing/", {"insight": "trends", "min_last_refresh": None}, format="json")
    assert response.status_code == 201 and response.content == b""


def test_timing_is_refused_to_scoped_keys_and_get_is_405(client, base, unscoped_client):
    response = client.post(f"{base}timing/", {}, format="json")
    assert response.status_code == 403 and response.json() == NOT_SUPPORTED
    assert unscoped_client.get(f"{base}timing/").status_code == 405


@pytest.mark.parametrize("family", ["projects", "environments"])
def test_other_organizations_project_is_403(user, family, api_client):
    stranger = make_team(name="Stranger")
    api = api_client(None, user=user)
    for path in ("bulk_update_tags", "generate_metadata", "timing"):
        response = api.post(f"/api/{family}/{stranger.id}/insights/{path}/", {}, format="json")
        assert response.status_code == 403, path
        assert response.json() == error("authentication_error", "permission_denied", "You don't have access to the project.")
