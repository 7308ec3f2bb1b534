import pytest

import queries
from alerts.models import AlertConfiguration
from insights.models import Insight
from tests.factories import AlertConfigurationFactory, InsightFactory
from tests.factories import make_environment  # noqa: F401  (re-exported to the alerts tests)

TRENDS_QUERY = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "TrendsQuery",
        "interval": "day",
        "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}, {"kind": "EventsNode", "event": "signed_up"}],
    },
}
BOLD_NUMBER_QUERY = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview"}],
        "trendsFilter": {"display": "BoldNumber"},
    },
}
FUNNEL_QUERY = {
    "kind": "InsightVizNode",
    "source": {"kind": "FunnelsQuery", "series": [{"kind": "EventsNode", "event": "a"}, {"kind": "EventsNode", "event": "b"}]},
}
SQL_QUERY = {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "select count() from events"}}
RETENTION_QUERY = {
    "kind": "InsightVizNode",
    "source": {"kind": "RetentionQuery", "retentionFilter": {"period": "Day"}},
}

ALERT_KEYS = [
    "id", "created_by", "created_at", "insight", "name", "subscribed_users", "threshold", "condition", "state", "enabled",
    "last_notified_at", "last_checked_at", "next_check_at", "checks", "checks_total", "config", "detector_config",
    "calculation_interval", "snoozed_until", "skip_weekend", "schedule_restriction", "last_value",
]
THRESHOLD_KEYS = ["id", "created_at", "name", "configuration"]
CHECK_KEYS = ["id", "created_at", "calculated_value", "state", "targets_notified", "triggered_metadata"]
USER_BASIC_KEYS = [
    "id", "uuid", "distinct_id", "first_name", "last_name", "email", "is_email_verified", "hedgehog_config", "role_at_organization",
]


def make_insight(team, query=TRENDS_QUERY, **fields) -> Insight:
    fields.setdefault("name", "Pageviews")
    return InsightFactory(team=team, query=query, **fields)


def alert_body(insight, users, *, lower=None, upper=None, threshold_type="absolute", condition="absolute_value", **overrides) -> dict:
    body = {
        "insight": insight.id,
        "name": "Too many pageviews",
        "subscribed_users": [user.id for user in users],
        "threshold": {"configuration": {"type": threshold_type, "bounds": {"lower": lower, "upper": upper}}},
        "condition": {"type": condition},
        "config": {"type": "TrendsAlertConfig", "series_index": 0},
        "calculation_interval": "daily",
    }
    body.update(overrides)
    return body


def make_alert(team, insight, users=(), *, condition="absolute_value", **fields) -> AlertConfiguration:
    """An alert written straight to the database (evaluation tests); `lower`/`upper`/`threshold_type` shape its threshold."""
    return AlertConfigurationFactory(team=team, insight=insight, subscribed_users=users, condition={"type": condition}, **fields)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Every test makes users; the default hasher costs most of a second per user on a busy machine.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def base(team):
    return f"/api/projects/{team.id}/alerts/"


@pytest.fixture
def insight(team):
    return make_insight(team)


class FakeEngine:
    """Stands in for `queries.execute_query`: answers with fixed series and records each query."""

    def __init__(self):
        self.results: list = []
        self.error: Exception | None = None
        self.calls: list[dict] = []

    def series(self, *data_lists, label="$pageview", **extra):
        self.results = [{"label": f"{label} {index}" if index else label, "data": list(data), **extra} for index, data in enumerate(data_lists)]

    def __call__(self, team, query, *, refresh="force_blocking", **kwargs):
        self.calls.append({"team": team, "query": query, "refresh": refresh})
        if self.error:
            raise self.error
        return {"results": self.results}


@pytest.fixture
def engine(monkeypatch):
    fake = FakeEngine()
    monkeypatch.setattr(queries, "execute_query", fake, raising=False)
    return fake
