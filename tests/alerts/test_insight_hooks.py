"""What the insights app calls: the `alerts` field of insights and the insight side effects (§3.3)."""
import pytest

from alerts.config import alertable_query_kind
from alerts.models import AlertConfiguration, Threshold
from alerts.services import alerts_for_insights, on_insight_query_changed, on_insight_soft_deleted
from tests.factories import make_member

from .conftest import ALERT_KEYS, FUNNEL_QUERY, RETENTION_QUERY, SQL_QUERY, TRENDS_QUERY, make_alert, make_insight

pytestmark = pytest.mark.django_db


def test_alerts_for_a_page_of_insights(team, user, django_assert_max_num_queries):
    insights = [make_insight(team, name=f"Insight {index}") for index in range(5)]
    users = [user, make_member(team)]
    first = make_alert(team, insights[0], users, upper=1, name="first")
    second = make_alert(team, insights[0], users, upper=2, name="second")
    third = make_alert(team, insights[3], users, upper=3, name="third")
    with django_assert_max_num_queries(5):
        alerts = alerts_for_insights([insight.id for insight in insights])
    assert set(alerts) == {insight.id for insight in insights}
    assert [a["id"] for a in alerts[insights[0].id]] == [str(second.id), str(first.id)]
    assert [a["id"] for a in alerts[insights[3].id]] == [str(third.id)]
    assert alerts[insights[1].id] == []
    alert = alerts[insights[3].id][0]
    assert list(alert) == ALERT_KEYS and isinstance(alert, dict)
    assert alert["insight"]["id"] == insights[3].id and [u["id"] for u in alert["subscribed_users"]] == [u.id for u in users]
    assert alert["threshold"]["configuration"]["bounds"]["upper"] == 3 and alert["checks"] == []
    assert alerts_for_insights([]) == {}


def test_soft_deleting_an_insight_deletes_its_alerts(team, insight):
    alert = make_alert(team, insight, upper=1)
    other = make_alert(team, make_insight(team), upper=1)
    on_insight_soft_deleted(insight)
    assert list(AlertConfiguration.objects.all()) == [other]
    assert Threshold.objects.filter(pk=alert.threshold_id).exists()


@pytest.mark.parametrize(
    "query,kept",
    [(TRENDS_QUERY, True), (FUNNEL_QUERY, True), (SQL_QUERY, True), (RETENTION_QUERY, False), (None, False)],
)
def test_a_query_change_keeps_alerts_only_while_alertable(team, insight, query, kept):
    make_alert(team, insight, upper=1)
    insight.query = query
    insight.save()
    on_insight_query_changed(insight)
    assert AlertConfiguration.objects.filter(insight=insight).exists() is kept


@pytest.mark.parametrize(
    "query,kind",
    [
        (TRENDS_QUERY, "TrendsQuery"),
        (TRENDS_QUERY["source"], "TrendsQuery"),
        (FUNNEL_QUERY, "FunnelsQuery"),
        (SQL_QUERY, "HogQLQuery"),
        ({"kind": "DataTableNode", "source": {"kind": "HogQLQuery", "query": "select 1"}}, "HogQLQuery"),
        ({"kind": "MetricsQuery"}, "MetricsQuery"),
        (RETENTION_QUERY, None),
        ({"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["*"]}}, None),
        ({"kind": "InsightVizNode", "source": "TrendsQuery"}, None),
        (None, None),
        ([], None),
    ],
)
def test_alertable_query_kind(query, kind):
    assert alertable_query_kind(query) == kind
