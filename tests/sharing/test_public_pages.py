"""Public pages of shared insights: /shared/<token>, /embedded/<token>, .json and .png."""
import datetime as dt
import io
import re

import pytest
from django.test import Client
from PIL import Image

import queries
from events.models import Event
from insights.models import InsightViewed
from tests.factories import make_team

from .conftest import make_insight, sharing_url

pytestmark = pytest.mark.django_db


def share(client, team, insight, **changes) -> str:
    response = client.patch(sharing_url(team, insight), {"enabled": True, **changes}, format="json")
    assert response.status_code == 200
    return response.json()["access_token"]


def assert_not_found_page(response):
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert b"This link does not exist, has expired or is no longer shared." in response.content


def test_shared_page_shows_name_description_and_chart(client, team, insight, engine):
    token = share(client, team, insight)
    response = Client().get(f"/shared/{token}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert '<h1 id="insight-name">Weekly pageviews</h1>' in html
    assert "Pageviews per day" in html
    svg = re.search(r"<svg[^>]*class=\"insight-chart\".*?</svg>", html, re.S).group(0)
    assert svg.count("<polyline") >= 2 + 1  # two series plus gridlines
    assert "<title>$pageview · 4-Jan-2025: 9</title>" in svg
    assert "1-Jan-2025" in svg
    assert 'property="og:image"' in html and f"/shared/{token}.png" in html
    assert "X-Frame-Options" not in response
    assert engine.calls[0]["refresh"] == "force_cache"
    assert engine.calls[0]["insight_id"] == insight.id and engine.calls[0]["team"] == team


def test_embedded_page(client, team, insight, engine):
    token = share(client, team, insight)
    response = Client().get(f"/embedded/{token}")
    assert response.status_code == 200
    assert b'<body class="embedded">' in response.content
    assert "X-Frame-Options" not in response


def test_page_is_bounded_in_queries(client, team, insight, engine, django_assert_max_num_queries):
    token = share(client, team, insight)
    viewer = Client()
    viewer.get(f"/shared/{token}")
    with django_assert_max_num_queries(6):
        assert viewer.get(f"/shared/{token}").status_code == 200
    with django_assert_max_num_queries(10):
        assert viewer.get(f"/shared/{token}.json").status_code == 200


def test_unknown_disabled_and_forbidden_shares_are_404_pages(client, team, insight, engine):
    assert_not_found_page(Client().get("/shared/doesnotexist"))
    assert_not_found_page(Client().get("/shared/doesnotexist.json"))
    token = client.get(sharing_url(team, insight)).json()["access_token"]
    assert_not_found_page(Client().get(f"/shared/{token}"))  # never enabled
    share(client, team, insight)
    assert Client().get(f"/shared/{token}").status_code == 200
    client.patch(sharing_url(team, insight), {"enabled": False}, format="json")
    assert_not_found_page(Client().get(f"/shared/{token}"))
    assert_not_found_page(Client().get(f"/embedded/{token}.png"))


def test_organization_forbidding_public_sharing_hides_existing_shares(client, team, insight, engine):
    token = share(client, team, insight)
    team.organization.allow_publicly_shared_resources = False
    team.organization.save()
    assert_not_found_page(Client().get(f"/shared/{token}"))


def test_deleted_insight_is_404(client, team, insight, engine):
    token = share(client, team, insight)
    insight.deleted = True
    insight.save()
    assert_not_found_page(Client().get(f"/shared/{token}"))


def test_json_payload(client, team, insight, engine):
    token = share(client, team, insight, settings={"legend": True, "hideExtraDetails": True, "noHeader": False})
    response = Client().get(f"/shared/{token}.json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"type", "accessToken", "insight", "themes", "legend", "hideExtraDetails"}
    assert (body["type"], body["accessToken"], body["themes"], body["legend"]) == ("scene", token, [], True)
    shared = body["insight"]
    assert (shared["id"], shared["short_id"], shared["name"]) == (insight.id, insight.short_id, "Weekly pageviews")
    assert shared["result"] == engine.response["results"]
    assert shared["last_refresh"] == "2025-01-04T12:00:00Z" and shared["is_cached"] is True
    assert shared["filters_hash"] == "cache_abc"
    assert "created_by" not in shared and "last_modified_by" not in shared  # hideExtraDetails
    assert Client().get(f"/embedded/{token}.json").json()["type"] == "embed"


def test_json_payload_keeps_creator_without_hide_extra_details(client, team, user, insight, engine):
    token = share(client, team, insight)
    shared = Client().get(f"/shared/{token}.json").json()["insight"]
    assert shared["created_by"]["email"] == user.email


def test_png(client, team, insight, engine):
    token = share(client, team, insight)
    response = Client().get(f"/shared/{token}.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG" and image.size == (1200, 630)
    colors = {color for _, color in image.getcolors(maxcolors=1_000_000)}
    assert (0x1D, 0x4A, 0xFF) in colors  # the first series is drawn


def test_png_without_results(client, team, insight, engine):
    engine.response = {"cache_key": "cache_abc", "query_status": None}
    token = share(client, team, insight)
    response = Client().get(f"/shared/{token}.png")
    assert response.status_code == 200
    assert Image.open(io.BytesIO(response.content)).size == (1200, 630)


def test_no_results_yet(client, team, insight, engine):
    engine.response = {"cache_key": "cache_abc", "query_status": None}
    token = share(client, team, insight)
    html = Client().get(f"/shared/{token}").content.decode()
    assert "No results yet" in html and "<svg" not in html
    assert Client().get(f"/shared/{token}.json").json()["insight"]["result"] is None


def test_insight_without_query_or_filters_has_no_results(client, team, user, engine):
    empty = make_insight(team, user, query=None, filters={})
    token = share(client, team, empty)
    assert b"No results yet" in Client().get(f"/shared/{token}").content
    assert engine.calls == []


def test_a_legacy_insight_computes_its_converted_query(client, team, user, engine):
    legacy = make_insight(team, user, query=None, filters={"insight": "TRENDS", "events": [{"id": "$pageview"}]})
    token = share(client, team, legacy)
    assert Client().get(f"/shared/{token}").status_code == 200
    assert [call["query"]["source"]["series"] for call in engine.calls][-1] == [
        {"kind": "EventsNode", "event": "$pageview", "name": "$pageview"}
    ]


def test_a_query_the_engine_rejects_shows_no_results(client, team, user):
    broken = make_insight(team, user, query={"kind": "InsightVizNode", "source": {"kind": "NoSuchQuery"}})
    token = share(client, team, broken)
    response = Client().get(f"/shared/{token}")
    assert response.status_code == 200
    assert b"No results yet" in response.content


def test_views_are_recorded_as_the_anonymous_viewer(client, team, insight, engine, clock):
    token = share(client, team, insight)
    Client().get(f"/shared/{token}")
    first = InsightViewed.objects.get(insight=insight)
    assert first.team is None and first.user is None
    clock.advance(minutes=1)
    Client().get(f"/embedded/{token}.json")
    viewed = InsightViewed.objects.get(insight=insight)
    assert viewed.last_viewed_at == clock.now and viewed.pk == first.pk


def test_text_from_users_is_escaped(client, team, user, engine):
    hostile = make_insight(team, user, name="<script>alert(1)</script>", description='"><img src=x onerror=alert(2)>')
    engine.response = {"results": [{"label": "<b onclick=x>", "labels": ["<i>"], "data": [1]}]}
    token = share(client, team, hostile)
    html = Client().get(f"/shared/{token}").content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "<b onclick" not in html and "&lt;b onclick=x&gt;" in html
    assert "<i>" not in html


@pytest.mark.parametrize(
    "query, results, expected",
    [
        (
            {"kind": "TrendsQuery", "series": [], "trendsFilter": {"display": "ActionsBar"}},
            [{"label": "clicks", "labels": ["Mon", "Tue"], "data": [2, 5]}],
            ['data-chart="bar"', "<rect", "<title>clicks · Tue: 5</title>"],
        ),
        (
            {"kind": "TrendsQuery", "series": [], "trendsFilter": {"display": "BoldNumber"}},
            [{"label": "signups", "aggregated_value": 12345.5, "data": []}],
            ['data-chart="number"', '<span class="value">12,345.5</span>', '<span class="label">signups</span>'],
        ),
        (
            {"kind": "TrendsQuery", "series": [], "trendsFilter": {"display": "ActionsPie"}},
            [{"label": "Chrome", "aggregated_value": 3}, {"label": "Safari", "aggregated_value": 5}],
            ['data-chart="bar"', "<title>Total · Safari: 5</title>"],
        ),
        (
            {"kind": "InsightVizNode", "source": {"kind": "FunnelsQuery", "series": []}},
            [
                {"action_id": "$pageview", "name": "$pageview", "custom_name": None, "order": 0, "count": 10},
                {"action_id": "signup", "name": "signup", "custom_name": "Signed up", "order": 1, "count": 4},
            ],
            ['data-chart="bar"', "<title>Count · Signed up: 4</title>"],
        ),
        (
            {"kind": "FunnelsQuery", "series": []},
            [
                [{"name": "a", "order": 0, "count": 5, "breakdown_value": ["Chrome"]}, {"name": "b", "order": 1, "count": 2, "breakdown_value": ["Chrome"]}],
                [{"name": "a", "order": 0, "count": 3, "breakdown_value": ["Safari"]}, {"name": "b", "order": 1, "count": 1, "breakdown_value": ["Safari"]}],
            ],
            ["<title>Chrome · b: 2</title>", "<title>Safari · a: 3</title>"],
        ),
        (
            {"kind": "RetentionQuery"},
            [
                {"label": "Day 0", "date": "2025-01-01T00:00:00Z", "values": [{"count": 10, "label": "Day 0"}, {"count": 4, "label": "Day 1"}]},
                {"label": "Day 1", "date": "2025-01-02T00:00:00Z", "values": [{"count": 8, "label": "Day 0"}]},
            ],
            ['data-chart="table"', '<th scope="col">Day 1</th>', "<td>2025-01-01</td>", "<td>4 (40%)</td>", "<td>8 (100%)</td>"],
        ),
        (
            {"kind": "LifecycleQuery", "series": []},
            [{"label": "x - dormant", "labels": ["Mon"], "data": [-3], "status": "dormant"}, {"label": "x - new", "labels": ["Mon"], "data": [2]}],
            ['data-chart="bar"', "<title>x - dormant · Mon: -3</title>"],
        ),
        (
            {"kind": "StickinessQuery", "series": []},
            [{"label": "$pageview", "labels": ["1 day", "2 days"], "data": [4, 1]}],
            ['data-chart="line"', "<title>$pageview · 2 days: 1</title>"],
        ),
        (
            {"kind": "PathsQuery", "pathsFilter": {}},
            [{"source": "1_/home", "target": "2_/pricing", "value": 5, "average_conversion_time": 1000}],
            ['data-chart="table"', "<td>1_/home</td>", "<td>2_/pricing</td>"],
        ),
        (
            {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "select 1"}},
            [["$pageview", 10], ["signup", None]],
            ['data-chart="table"', '<th scope="col">event</th>', "<td>$pageview</td>", "<td>10</td>"],
        ),
        ({"kind": "SomethingNew"}, [{"x": 1}], ['data-chart="unsupported"', "This insight cannot be drawn here."]),
        ({"kind": "TrendsQuery", "series": []}, [{"label": 5, "data": "garbage"}], ['data-chart="unsupported"']),
    ],
)
def test_chart_per_insight_kind(client, team, user, engine, query, results, expected):
    engine.response = {"results": results, "columns": ["event", "count"]}
    token = share(client, team, make_insight(team, user, query=query))
    response = Client().get(f"/shared/{token}")
    assert response.status_code == 200
    html = response.content.decode()
    for fragment in expected:
        assert fragment in html
    assert Client().get(f"/shared/{token}.png")["Content-Type"] == "image/png"


def test_page_settings(client, team, insight, engine):
    token = share(client, team, insight, settings={"noHeader": True, "detailed": True, "whitelabel": True, "theme": "dark"})
    html = Client().get(f"/shared/{token}").content.decode()
    assert 'id="insight-name"' not in html
    assert 'id="insight-details"' in html and "<td>$pageview</td>" in html
    assert "Shared insight</span>" not in html
    assert 'data-theme="dark"' in html


def test_legend_setting(client, team, insight, engine):
    # One series needs no legend unless the share asks for one; several always get one (below).
    engine.response = {**engine.response, "results": engine.response["results"][1:]}
    token = share(client, team, insight)
    assert ">signed_up</text>" not in Client().get(f"/shared/{token}").content.decode()
    client.patch(sharing_url(team, insight), {"settings": {"legend": True}}, format="json")
    assert ">signed_up</text>" in Client().get(f"/shared/{token}").content.decode()


def test_other_methods_are_405(client, team, insight, engine):
    token = share(client, team, insight)
    assert Client().put(f"/shared/{token}").status_code == 405
    assert Client().delete(f"/shared/{token}").status_code == 405


def test_post_to_an_unprotected_share_renders_it(client, team, insight, engine):
    token = share(client, team, insight)
    response = Client().post(f"/shared/{token}", {"password": "whatever"}, content_type="application/json")
    assert response.status_code == 200 and b"Weekly pageviews" in response.content


def test_shares_of_other_teams_do_not_mix(client, team, insight, engine):
    token = share(client, team, insight)
    other_team = make_team()
    other_insight = make_insight(other_team, name="Their insight")
    assert b"Their insight" not in Client().get(f"/shared/{token}").content
    assert Client().get(f"/shared/{token}.json").json()["insight"]["id"] == insight.id
    assert other_insight.sharing_configurations.count() == 0


def test_rotated_link_keeps_working_for_five_minutes_then_stops(client, team, insight, engine, clock):
    old = share(client, team, insight)
    new = client.post(sharing_url(team, insight, "refresh/")).json()["access_token"]
    clock.advance(seconds=299)
    assert Client().get(f"/shared/{old}").status_code == 200
    assert Client().get(f"/shared/{new}").status_code == 200
    assert Client().get(f"/shared/{old}.json").json()["accessToken"] == old
    clock.advance(seconds=2)
    assert_not_found_page(Client().get(f"/shared/{old}"))
    assert Client().get(f"/shared/{new}").status_code == 200


def test_rotating_twice_retires_each_link_after_its_own_grace_period(client, team, insight, engine, clock):
    first = share(client, team, insight)
    second = client.post(sharing_url(team, insight, "refresh/")).json()["access_token"]
    clock.advance(seconds=200)
    third = client.post(sharing_url(team, insight, "refresh/")).json()["access_token"]
    clock.advance(seconds=150)
    assert Client().get(f"/shared/{first}").status_code == 404
    assert Client().get(f"/shared/{second}").status_code == 200
    clock.advance(seconds=200)
    assert Client().get(f"/shared/{second}").status_code == 404
    assert Client().get(f"/shared/{third}").status_code == 200


def test_disabling_sharing_also_retires_links_in_their_grace_period(client, team, insight, engine, clock):
    old = share(client, team, insight)
    client.post(sharing_url(team, insight, "refresh/"))
    client.patch(sharing_url(team, insight), {"enabled": False}, format="json")
    assert_not_found_page(Client().get(f"/shared/{old}"))
    client.patch(sharing_url(team, insight), {"enabled": True}, format="json")
    assert_not_found_page(Client().get(f"/shared/{old}"))


def test_page_charts_what_the_query_engine_has_cached(client, team, user):
    def at(day, hour):
        return dt.datetime(2025, 1, day, hour, tzinfo=dt.timezone.utc)

    Event.objects.bulk_create(
        Event(team=team, event="$pageview", distinct_id=distinct_id, timestamp=when)
        for distinct_id, when in (("a", at(1, 10)), ("b", at(1, 11)), ("a", at(3, 9)))
    )
    query = {
        "kind": "InsightVizNode",
        "source": {
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview"}],
            "interval": "day",
            "dateRange": {"date_from": "2025-01-01", "date_to": "2025-01-03"},
        },
    }
    token = share(client, team, make_insight(team, user, query=query))
    queries.execute_query(team, query, refresh="blocking")
    html = Client().get(f"/shared/{token}").content.decode()
    for day, count in (("1-Jan-2025", 2), ("2-Jan-2025", 0), ("3-Jan-2025", 1)):
        assert f"<title>$pageview · {day}: {count}</title>" in html
    assert Client().get(f"/shared/{token}.json").json()["insight"]["result"][0]["data"] == [2, 0, 1]


def test_a_page_with_nothing_cached_computes_its_result(client, team, user):
    Event.objects.bulk_create(
        Event(team=team, event="$pageview", distinct_id=distinct_id, timestamp=dt.datetime(2025, 1, day, 12, tzinfo=dt.timezone.utc))
        for distinct_id, day in (("a", 1), ("b", 1), ("a", 3))
    )
    query = {
        "kind": "InsightVizNode",
        "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "interval": "day",
                   "dateRange": {"date_from": "2025-01-01", "date_to": "2025-01-03"}},
    }
    insight = make_insight(team, user, query=query)
    token = share(client, team, insight)
    html = Client().get(f"/shared/{token}").content.decode()
    assert "No results yet" not in html and 'http-equiv="refresh"' not in html
    assert "<title>$pageview · 1-Jan-2025: 2</title>" in html
    shared = Client().get(f"/shared/{token}.json").json()["insight"]
    assert (shared["result"][0]["data"], shared["is_cached"]) == ([2, 0, 1], True)  # computed once, then cached
    assert Client().get(f"/shared/{token}.png")["Content-Type"] == "image/png"
    # Another insight's share computes its own.
    other = share(client, team, make_insight(team, user, query={**query, "source": {**query["source"], "interval": "week"}}))
    assert Client().get(f"/shared/{other}.json").json()["insight"]["result"][0]["count"] == 3
