"""Insight views: `viewed`, `my_last_viewed`, `trending`, `last_viewed_at` (spec §1.3, §4)."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from insights.models import InsightViewed
from insights.services import record_anonymous_insight_view
from tests.conftest import error
from tests.factories import make_member, make_team

from .conftest import BASIC_KEYS, USER_BASIC_KEYS, make_insight, view

pytestmark = pytest.mark.django_db

NOW = timezone.now()
TRENDING_KEYS = [*BASIC_KEYS, "view_count", "viewers", "last_modified_by"]


# -- viewed ------------------------------------------------------------------------------------


def test_viewed_records_one_row_per_user_and_insight(client, base, team, user):
    first, second = make_insight(team), make_insight(team)
    response = client.post(f"{base}viewed/", {"insight_ids": [first.id, second.id]}, format="json")
    assert response.status_code == 201
    assert response.content == b""
    rows = InsightViewed.objects.filter(user=user)
    assert sorted(rows.values_list("insight_id", flat=True)) == [first.id, second.id]
    assert set(rows.values_list("team_id", flat=True)) == {team.id}
    earlier = rows.get(insight=first).last_viewed_at

    assert client.post(f"{base}viewed/", {"insight_ids": [first.id, first.id]}, format="json").status_code == 201
    assert InsightViewed.objects.filter(user=user, insight=first).count() == 1
    assert InsightViewed.objects.get(user=user, insight=first).last_viewed_at > earlier


def test_viewed_drops_foreign_and_deleted_ids(client, base, team, user):
    live = make_insight(team)
    deleted = make_insight(team, deleted=True)
    foreign = make_insight(make_team())
    response = client.post(f"{base}viewed/", {"insight_ids": [live.id, deleted.id, foreign.id, 987654]}, format="json")
    assert response.status_code == 201
    assert list(InsightViewed.objects.values_list("insight_id", flat=True)) == [live.id]


def test_viewed_of_a_sibling_environment_is_recorded_for_the_url_team(client, base, team, user):
    sibling = make_team(team.organization)
    sibling.project = team.project
    sibling.save()
    insight = make_insight(sibling)
    client.post(f"{base}viewed/", {"insight_ids": [insight.id]}, format="json")
    assert InsightViewed.objects.get(insight=insight).team_id == team.id


@pytest.mark.parametrize(
    "payload, expected",
    [
        ({}, error("validation_error", "required", "This field is required.", "insight_ids")),
        ({"insight_ids": []}, error("validation_error", "empty", "This list may not be empty.", "insight_ids")),
        ({"insight_ids": "1"}, error("validation_error", "not_a_list", 'Expected a list of items but got type "str".', "insight_ids")),
        ({"insight_ids": ["a"]}, error("validation_error", "invalid_input", "A valid integer is required.", "insight_ids__0")),
        ({"insight_ids": [0]}, error("validation_error", "min_value", "Ensure this value is greater than or equal to 1.", "insight_ids__0")),
        (
            {"insight_ids": [1, 2**64]},
            error("validation_error", "max_value", f"Ensure this value is less than or equal to {2**63 - 1}.", "insight_ids__1"),
        ),
        (
            {"insight_ids": list(range(1, 2502))},
            error("validation_error", "max_length", "Ensure this field has no more than 2500 elements.", "insight_ids"),
        ),
    ],
)
def test_viewed_validation(client, base, payload, expected):
    response = client.post(f"{base}viewed/", payload, format="json")
    assert response.status_code == 400
    assert response.json() == expected


def test_viewed_costs_the_same_queries_for_1_or_2500_ids(client, base, team):
    insights = [make_insight(team) for _ in range(3)]
    payloads = [[insights[0].id], [i.id for i in insights] + list(range(10**6, 10**6 + 2497))]
    client.get(base)  # the key's first use of the hour writes last_used_at: keep it out of the counts
    counts = []
    for insight_ids in payloads:
        with CaptureQueriesContext(connection) as captured:
            assert client.post(f"{base}viewed/", {"insight_ids": insight_ids}, format="json").status_code == 201
        counts.append(len(captured))
    assert counts[0] == counts[1] <= 4  # key, membership, one upsert (and a savepoint on some setups)
    assert InsightViewed.objects.count() == 3


def test_viewed_needs_insight_read(base, user, api_client):
    reader = api_client(["insight:read"])
    assert reader.post(f"{base}viewed/", {"insight_ids": [1]}, format="json").status_code == 201
    other = api_client(["dashboard:read"])
    response = other.post(f"{base}viewed/", {"insight_ids": [1]}, format="json")
    assert response.json() == error("authentication_error", "permission_denied", "API key missing required scope 'insight:read'")


# -- my_last_viewed ----------------------------------------------------------------------------


def test_my_last_viewed(unscoped_client, base, team, user):
    other = make_member(team)
    insights = [make_insight(team, name=f"i{n}") for n in range(7)]
    for n, insight in enumerate(insights):
        view(insight, user, NOW - timedelta(minutes=n))
    view(insights[6], other, NOW + timedelta(minutes=5))  # someone else's view does not count
    deleted = make_insight(team, deleted=True)
    view(deleted, user, NOW + timedelta(hours=1))
    sibling = make_team(team.organization)
    sibling.project = team.project
    sibling.save()
    view(make_insight(sibling), user, NOW + timedelta(hours=1), team=sibling)  # another environment's views

    response = unscoped_client.get(f"{base}my_last_viewed/")
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, list)
    assert [row["name"] for row in body] == ["i0", "i1", "i2", "i3", "i4"]
    assert list(body[0]) == BASIC_KEYS
    assert body[1]["last_viewed_at"] == (NOW - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")


def test_my_last_viewed_refuses_scoped_keys(client, base, team, user):
    response = client.get(f"{base}my_last_viewed/")
    assert response.status_code == 403
    assert response.json() == error("authentication_error", "permission_denied", "This action does not support Personal API Key access")
    session = APIClient()
    session.force_login(user)
    assert session.get(f"{base}my_last_viewed/").json() == []


# -- trending ----------------------------------------------------------------------------------


def test_trending_ranks_by_viewers_in_the_window(client, base, team, user):
    viewers = [make_member(team) for _ in range(4)]
    popular = make_insight(team, name="popular", last_modified_at=NOW - timedelta(days=5), last_modified_by=viewers[0])
    for n, viewer in enumerate(viewers):
        view(popular, viewer, NOW - timedelta(hours=n))
    tie_newer = make_insight(team, name="tie newer", last_modified_at=NOW - timedelta(days=1))
    tie_older = make_insight(team, name="tie older", last_modified_at=NOW - timedelta(days=2))
    for insight in (tie_newer, tie_older):
        view(insight, user, NOW - timedelta(days=1))
        view(insight, viewers[0], NOW - timedelta(days=2))
    stale = make_insight(team, name="stale")
    view(stale, user, NOW - timedelta(days=10))
    make_insight(team, name="never viewed")
    gone = make_insight(team, name="deleted", deleted=True)
    view(gone, user, NOW)

    response = client.get(f"{base}trending/")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["count", "next", "previous", "results"]
    assert (body["count"], body["next"], body["previous"]) == (3, None, None)
    assert [row["name"] for row in body["results"]] == ["popular", "tie newer", "tie older"]
    top = body["results"][0]
    assert list(top) == TRENDING_KEYS
    assert top["view_count"] == 4
    assert [v["id"] for v in top["viewers"]] == [viewers[0].id, viewers[1].id, viewers[2].id]  # 3 most recent
    assert list(top["viewers"][0]) == USER_BASIC_KEYS
    assert top["last_modified_by"]["id"] == viewers[0].id
    assert top["last_viewed_at"] == NOW.isoformat().replace("+00:00", "Z")
    assert body["results"][1]["view_count"] == 2

    wider = client.get(f"{base}trending/", {"days": 30}).json()
    assert [row["name"] for row in wider["results"]] == ["popular", "tie newer", "tie older", "stale"]


def test_trending_limit_and_offset(client, base, team, user):
    for n in range(5):
        insight = make_insight(team, name=f"i{n}", last_modified_at=NOW - timedelta(days=n))
        view(insight, user, NOW)
    names = lambda **params: [row["name"] for row in client.get(f"{base}trending/", params).json()["results"]]  # noqa: E731
    assert names(limit=2) == ["i0", "i1"]
    assert names(limit=2, offset=2) == ["i2", "i3"]
    assert names(offset=4) == ["i4"]
    assert names(limit=1000) == ["i0", "i1", "i2", "i3", "i4"]  # capped at 100, not an error


def test_trending_counts_the_anonymous_shared_viewer_once(client, base, team, user):
    insight = make_insight(team)
    record_anonymous_insight_view(insight)
    record_anonymous_insight_view(insight)
    view(insight, user, NOW)
    assert InsightViewed.objects.filter(user__isnull=True).count() == 1
    result = client.get(f"{base}trending/").json()["results"][0]
    assert result["view_count"] == 2
    assert [v["id"] for v in result["viewers"]] == [user.id]
    # ... and it is the insight's latest view.
    assert client.get(base).json()["results"][0]["last_viewed_at"] >= result["last_viewed_at"]


def test_trending_stays_in_the_project(client, base, team, user):
    foreign = make_insight(make_team())
    view(foreign, user, NOW, team=foreign.team)
    assert client.get(f"{base}trending/").json()["results"] == []


@pytest.mark.parametrize(
    "params, attr, detail",
    [
        ({"days": "abc"}, "days", "A valid integer is required."),
        ({"limit": "1.5"}, "limit", "A valid integer is required."),
        ({"days": 0}, "days", "Ensure this value is greater than or equal to 1."),
        ({"limit": -3}, "limit", "Ensure this value is greater than or equal to 1."),
        ({"offset": -1}, "offset", "Ensure this value is greater than or equal to 0."),
        ({"days": 1000000}, "days", "Ensure this value is less than or equal to 36500."),
        ({"days": 2**64}, "days", "Ensure this value is less than or equal to 36500."),
        ({"offset": 2**64}, "offset", f"Ensure this value is less than or equal to {2**63 - 1}."),
    ],
)
def test_trending_validation(client, base, params, attr, detail):
    response = client.get(f"{base}trending/", params)
    assert response.status_code == 400
    body = response.json()
    assert (body["type"], body["attr"], body["detail"]) == ("validation_error", attr, detail)


def test_trending_query_count_does_not_grow(client, base, team, django_assert_max_num_queries):
    users = [make_member(team) for _ in range(5)]
    for n in range(30):
        insight = make_insight(team, tags=["t"])
        for viewer in users:
            view(insight, viewer, NOW - timedelta(minutes=n))
    client.get(base, {"limit": 1})  # the key's hourly last_used_at write stays out of the count
    # key, team, membership; then ranking, insights, tiles, tags, viewers
    with django_assert_max_num_queries(8):
        response = client.get(f"{base}trending/", {"limit": 100})
    assert response.json()["count"] == 30
    assert all(len(row["viewers"]) == 3 for row in response.json()["results"])


# -- cancel ------------------------------------------------------------------------------------


def test_cancel(unscoped_client, client, base):
    response = unscoped_client.post(f"{base}cancel/", {"client_query_id": "abc-123"}, format="json")
    assert response.status_code == 201
    assert response.content == b""
    missing = unscoped_client.post(f"{base}cancel/", {}, format="json")
    assert missing.json() == error("validation_error", "required", "This field is required.", "client_query_id")
    # No scope maps to it: scoped keys are refused, as in PostHog.
    refused = client.post(f"{base}cancel/", {"client_query_id": "abc-123"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This action does not support Personal API Key access"
