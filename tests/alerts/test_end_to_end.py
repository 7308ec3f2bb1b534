"""Alerts on events computed by the real query engine (`queries.execute_query`), its clock pinned.

The issue's "done when": create an alert with a threshold through the API, see the threshold
under the insight, ingest events that break the bound, run the check, see the alert firing.
"""
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from alerts.checks import check_alert
from alerts.models import AlertConfiguration
from events.models import Event

from .conftest import BOLD_NUMBER_QUERY, alert_body, make_alert, make_insight

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 5, 15, 10, 30, tzinfo=UTC)  # a Wednesday
TODAY, YESTERDAY, TWO_DAYS_AGO = NOW.replace(hour=9), NOW.replace(hour=9) - timedelta(days=1), NOW.replace(hour=9) - timedelta(days=2)


@pytest.fixture(autouse=True)
def pinned_engine_clock(monkeypatch):
    import queries.clock

    monkeypatch.setattr(queries.clock, "now", lambda: NOW)


def ingest(team, event, at, count, **properties):
    Event.objects.bulk_create(
        [Event(team=team, event=event, distinct_id=f"user-{index}", properties=properties, timestamp=at + timedelta(minutes=index)) for index in range(count)]
    )


def test_done_when_an_alert_fires_on_ingested_events(client, team, user, insight, capsys):
    created = client.post(f"/api/projects/{team.id}/alerts/", alert_body(insight, [user], upper=3), format="json")
    assert created.status_code == 201
    alert_id, threshold_id = created.json()["id"], created.json()["threshold"]["id"]

    thresholds = client.get(f"/api/projects/{team.id}/insights/{insight.id}/thresholds/").json()
    assert [t["id"] for t in thresholds["results"]] == [threshold_id]
    assert thresholds["results"][0]["configuration"]["bounds"]["upper"] == 3

    ingest(team, "$pageview", YESTERDAY, 5)
    ingest(team, "$pageview", TODAY, 50)  # the ongoing day does not count
    ingest(team, "signed_up", YESTERDAY, 50)  # another series
    call_command("check_alerts")
    assert "1 firing" in capsys.readouterr().out

    alert = client.get(f"/api/projects/{team.id}/alerts/{alert_id}/").json()
    assert alert["state"] == "Firing" and alert["last_value"] == 5
    assert [(c["state"], c["calculated_value"], c["targets_notified"]) for c in alert["checks"]] == [("Firing", 5.0, True)]


@pytest.mark.parametrize("yesterday,state", [(3, "Not firing"), (4, "Firing")])
def test_absolute_value_around_the_upper_bound(team, insight, yesterday, state):
    ingest(team, "$pageview", YESTERDAY, yesterday)
    alert = make_alert(team, insight, upper=3)
    assert check_alert(alert.id, now=NOW) == state
    assert AlertConfiguration.objects.get(pk=alert.pk).last_value == yesterday


@pytest.mark.parametrize("yesterday,state", [(2, "Firing"), (3, "Not firing")])
def test_absolute_value_around_the_lower_bound(team, insight, yesterday, state):
    ingest(team, "$pageview", YESTERDAY, yesterday)
    assert check_alert(make_alert(team, insight, lower=3).id, now=NOW) == state


def test_second_series_and_ongoing_interval(team, insight):
    ingest(team, "signed_up", YESTERDAY, 1)
    ingest(team, "signed_up", TODAY, 6)
    config = {"type": "TrendsAlertConfig", "series_index": 1, "check_ongoing_interval": True}
    alert = make_alert(team, insight, upper=5, config=config)
    assert check_alert(alert.id, now=NOW) == "Firing"
    assert AlertConfiguration.objects.get(pk=alert.pk).last_value == 6


@pytest.mark.parametrize(
    "condition,threshold_type,before,after,bounds,state,value",
    [
        ("relative_increase", "absolute", 2, 6, {"upper": 3}, "Firing", 4),
        ("relative_increase", "absolute", 2, 5, {"upper": 3}, "Not firing", 3),
        ("relative_increase", "percentage", 4, 6, {"upper": 0.4}, "Firing", 0.5),
        ("relative_increase", "percentage", 4, 5, {"upper": 0.4}, "Not firing", 0.25),
        ("relative_decrease", "absolute", 6, 1, {"upper": 4}, "Firing", 5),
        ("relative_decrease", "absolute", 6, 3, {"upper": 4}, "Not firing", 3),
        ("relative_decrease", "percentage", 8, 2, {"upper": 0.5}, "Firing", 0.75),
        ("relative_decrease", "percentage", 8, 7, {"lower": 0.2}, "Firing", 0.125),
    ],
)
def test_relative_conditions_on_events(team, insight, condition, threshold_type, before, after, bounds, state, value):
    ingest(team, "$pageview", TWO_DAYS_AGO, before)
    ingest(team, "$pageview", YESTERDAY, after)
    alert = make_alert(team, insight, threshold_type=threshold_type, condition=condition, **bounds)
    assert check_alert(alert.id, now=NOW) == state
    assert AlertConfiguration.objects.get(pk=alert.pk).last_value == pytest.approx(value)


def test_total_value_display(team):
    bold = make_insight(team, BOLD_NUMBER_QUERY)
    ingest(team, "$pageview", NOW - timedelta(days=5), 3)
    ingest(team, "$pageview", TODAY, 4)
    alert = make_alert(team, bold, upper=6)
    assert check_alert(alert.id, now=NOW) == "Firing"
    assert AlertConfiguration.objects.get(pk=alert.pk).last_value == 7


def test_breakdown_fires_on_any_value(team):
    query = {
        "kind": "InsightVizNode",
        "source": {
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview"}],
            "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
        },
    }
    ingest(team, "$pageview", YESTERDAY, 2, **{"$browser": "Chrome"})
    ingest(team, "$pageview", YESTERDAY, 5, **{"$browser": "Safari"})
    alert = make_alert(team, make_insight(team, query), upper=4)
    assert check_alert(alert.id, now=NOW) == "Firing"
    assert AlertConfiguration.objects.get(pk=alert.pk).last_value == 5


def test_an_erroring_query(team):
    query = {
        "kind": "InsightVizNode",
        "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview", "math": "hogql", "math_hogql": "count(("}]},
    }
    alert = make_alert(team, make_insight(team, query), upper=1)
    assert check_alert(alert.id, now=NOW) == "Errored"
    check = AlertConfiguration.objects.get(pk=alert.pk).checks.get()
    assert check.state == "Errored"
    assert check.error["message"].startswith("Syntax error in HogQL expression")  # the engine's own words


def test_other_teams_events_do_not_count(team, insight):
    from tests.factories import make_team

    ingest(make_team(), "$pageview", YESTERDAY, 10)
    assert check_alert(make_alert(team, insight, upper=3).id, now=NOW) == "Not firing"
