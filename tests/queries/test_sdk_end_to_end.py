"""Events sent by the real posthog-python SDK to a live server show up in a trends result computed
with refresh=blocking, and the next call is served from the cache."""
from datetime import datetime, timedelta, timezone

import pytest
import requests
from django.db import connections
from posthog import Posthog
from posthog import request as posthog_request

from queries import execute_query
from tests.factories import make_key

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("events_engine")]

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
QUERY = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "dateRange": {"date_from": "2024-03-01", "date_to": "2024-03-02"},
}


@pytest.fixture
def live_url(live_server, monkeypatch):
    # The server's request threads must not keep database connections open (the test database could
    # not be dropped), nor HTTP keep-alive connections past the test (they outlive the server).
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    yield live_server.url
    posthog_request._get_session().close()


def test_sdk_events_in_a_trends_result(live_url, team, user):
    sdk = Posthog(team.api_token, host=live_url, sync_mode=True)
    sdk.capture("$pageview", distinct_id="u1", properties={"$browser": "Chrome"}, timestamp=T0)
    sdk.capture("$pageview", distinct_id="u1", properties={"$browser": "Chrome"}, timestamp=T0 + timedelta(minutes=5))
    sdk.capture("$pageview", distinct_id="u2", properties={"$browser": "Safari"}, timestamp=T0 + timedelta(days=1))
    sdk.capture("signed_up", distinct_id="u2", timestamp=T0 + timedelta(days=1))

    url = f"{live_url}/api/projects/{team.id}/query/"
    headers = {"Authorization": f"Bearer {make_key(user)}", "Connection": "close"}
    response = requests.post(url, json={"query": QUERY, "refresh": "blocking"}, headers=headers, timeout=30)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "results", "hasMore", "hogql", "modifiers", "error", "resolved_date_range", "is_cached", "last_refresh",
        "next_allowed_client_refresh", "cache_target_age", "cache_key", "timezone", "query_status",
    }
    assert body["results"] == [
        {
            "data": [2, 1],
            "labels": ["1-Mar-2024", "2-Mar-2024"],
            "days": ["2024-03-01", "2024-03-02"],
            "count": 3.0,
            "label": "$pageview",
            "filter": {
                "insight": "TRENDS",
                "properties": [],
                "filter_test_accounts": False,
                "date_to": "2024-03-02T23:59:59.999999Z",
                "date_from": "2024-03-01T00:00:00Z",
                "entity_type": "events",
                "interval": "day",
            },
            "action": {
                "days": ["2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z"],
                "id": "$pageview",
                "type": "events",
                "order": 0,
                "name": "$pageview",
                "custom_name": None,
                "math": None,
                "math_property": None,
                "math_hogql": None,
                "math_group_type_index": None,
                "properties": {},
            },
        }
    ]
    assert body["hasMore"] is False and body["error"] is None and body["modifiers"] == {}
    assert body["is_cached"] is False and body["query_status"] is None and body["timezone"] == "UTC"
    assert body["resolved_date_range"] == {"date_from": "2024-03-01T00:00:00Z", "date_to": "2024-03-02T23:59:59.999999Z"}
    assert " AS e" in body["hogql"] and "'$pageview'" in body["hogql"]  # the SQL that ran, on either engine
    last_refresh = datetime.fromisoformat(body["last_refresh"].replace("Z", "+00:00"))
    assert body["cache_target_age"] == (last_refresh + timedelta(hours=6)).isoformat().replace("+00:00", "Z")
    assert body["next_allowed_client_refresh"] == (last_refresh + timedelta(minutes=3)).isoformat().replace("+00:00", "Z")

    # what an insight list/retrieve gets with the default refresh mode: the cached result
    cached = execute_query(team, {"kind": "InsightVizNode", "source": QUERY}, refresh="force_cache")
    assert cached == {**body, "is_cached": True}
