import datetime as dt

import pytest
from django.urls import get_resolver
from django.utils import timezone

import queries.api
from insights.models import Insight
from tests.factories import InsightFactory
from tests.factories import make_environment  # noqa: F401  (re-exported to the sharing tests)

TRENDS_QUERY = {
    "kind": "InsightVizNode",
    "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}], "interval": "day"},
}
TRENDS_RESPONSE = {
    "results": [
        {
            "label": "$pageview",
            "labels": ["1-Jan-2025", "2-Jan-2025", "3-Jan-2025", "4-Jan-2025"],
            "days": ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"],
            "data": [3, 7, 4, 9],
            "count": 23,
            "action": {"id": "$pageview", "name": "$pageview", "type": "events", "order": 0},
        },
        {
            "label": "signed_up",
            "labels": ["1-Jan-2025", "2-Jan-2025", "3-Jan-2025", "4-Jan-2025"],
            "days": ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"],
            "data": [1, 0, 2, 1],
            "count": 4,
            "action": {"id": "signed_up", "name": "signed_up", "type": "events", "order": 1},
        },
    ],
    "is_cached": True,
    "last_refresh": "2025-01-04T12:00:00Z",
    "cache_key": "cache_abc",
    "timezone": "UTC",
    "hasMore": False,
}


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    # Django's default hasher is deliberately slow; one test checks it is what production uses.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


class FakeEngine:
    """Stands in for the query engine (queries.api.execute_query, which insights.results calls):
    answers every query with `response` and records calls."""

    def __init__(self):
        self.response = TRENDS_RESPONSE
        self.calls = []

    def __call__(self, team, query, **kwargs):
        self.calls.append({"team": team, "query": query, **kwargs})
        return self.response


def replace_query_engine(monkeypatch, fake):
    """Installs `fake` as queries.api.execute_query for one test.

    The URLconf is loaded first: modules it imports that bind `execute_query` by name would
    otherwise keep the fake for the rest of the session if their first import fell in this test.
    """
    get_resolver().url_patterns
    monkeypatch.setattr(queries.api, "execute_query", fake)
    return fake


@pytest.fixture
def engine(monkeypatch):
    return replace_query_engine(monkeypatch, FakeEngine())


class Clock:
    def __init__(self):
        self.now = timezone.now()

    def advance(self, **delta):
        self.now += dt.timedelta(**delta)

    def __call__(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """Freezes django.utils.timezone.now (what the sharing code reads) until advanced."""
    frozen = Clock()
    monkeypatch.setattr(timezone, "now", frozen)
    return frozen


def make_insight(team, user=None, **fields) -> Insight:
    defaults = {"name": "Weekly pageviews", "description": "Pageviews per day", "query": TRENDS_QUERY}
    return InsightFactory(team=team, created_by=user, **{**defaults, **fields})


@pytest.fixture
def insight(team, user):
    return make_insight(team, user)


def sharing_url(team, insight, suffix="", family="projects"):
    return f"/api/{family}/{team.id}/insights/{insight.id}/sharing/{suffix}"
