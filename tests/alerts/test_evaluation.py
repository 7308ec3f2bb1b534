"""Alert checks with a stand-in query engine: conditions, bounds, states, errors, snoozing,
weekends, scheduling, notifications, the command and the Celery tasks (spec §8, issue part 5)."""
import logging
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from alerts.checks import CLAIM_LEASE, SKIPPED, check_alert, check_alerts, delete_old_checks, due_alert_ids, next_check_time
from alerts.models import AlertCheck, AlertConfiguration, AlertState
from alerts.notifications import NotificationBackend
from insights.models import Insight
from tests.factories import make_member

from .conftest import BOLD_NUMBER_QUERY, FUNNEL_QUERY, TRENDS_QUERY, alert_body, make_alert, make_insight

pytestmark = pytest.mark.django_db

WEDNESDAY = datetime(2024, 5, 15, 10, 30, tzinfo=UTC)


def run(alert, now=WEDNESDAY):
    """Check one alert; return the alert reloaded and its newest check."""
    check_alert(alert.id, now=now)
    alert = AlertConfiguration.objects.get(pk=alert.pk)
    return alert, alert.checks.order_by("-created_at").first()


def with_query(insight, **source_changes) -> Insight:
    query = {**TRENDS_QUERY, "source": {**TRENDS_QUERY["source"], **source_changes}}
    Insight.objects.filter(pk=insight.pk).update(query=query)
    insight.refresh_from_db()
    return insight


# -- absolute value ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lower,upper,completed,state",
    [
        (None, 10, 11, "Firing"),
        (None, 10, 10, "Not firing"),  # the bound itself is not a breach
        (None, 10, 9, "Not firing"),
        (5, None, 4, "Firing"),
        (5, None, 5, "Not firing"),
        (5, 10, 7, "Not firing"),
        (5, 10, 2, "Firing"),
        (5, 10, 12, "Firing"),
        (-1.5, 0.5, 0.25, "Not firing"),
    ],
)
def test_absolute_value_compares_the_last_completed_interval(engine, team, user, insight, lower, upper, completed, state):
    engine.series([100, completed, 999])  # the ongoing interval (999) is ignored
    alert, check = run(make_alert(team, insight, [user], lower=lower, upper=upper))
    assert (alert.state, check.state, check.calculated_value, alert.last_value) == (state, state, completed, completed)
    assert check.error is None and check.condition == {"type": "absolute_value"}
    assert alert.last_checked_at == WEDNESDAY and check.created_at == WEDNESDAY


def test_engine_is_asked_for_the_last_intervals_of_the_unwrapped_query(engine, team, insight):
    engine.series([1, 2, 3])
    run(make_alert(team, insight, upper=10))
    run(make_alert(team, with_query(make_insight(team), interval="week"), upper=10, condition="relative_increase"))
    run(make_alert(team, with_query(make_insight(team), interval="month", dateRange={"date_from": "-90d", "date_to": "-1d"}), upper=10))
    run(make_alert(team, with_query(make_insight(team), interval="hour"), upper=10))
    queries = [call["query"] for call in engine.calls]
    assert [q["dateRange"] for q in queries] == [{"date_from": "-2d"}, {"date_from": "-3w"}, {"date_from": "-2m"}, {"date_from": "-2h"}]
    assert all(q["kind"] == "TrendsQuery" and q["series"] == TRENDS_QUERY["source"]["series"] for q in queries)
    assert {call["refresh"] for call in engine.calls} == {"force_blocking"}
    assert engine.calls[0]["team"] == team


def test_series_index_picks_the_series(engine, team, insight):
    engine.series([0, 1, 0], [0, 50, 0])
    alert, check = run(make_alert(team, insight, upper=10, config={"type": "TrendsAlertConfig", "series_index": 1}))
    assert (alert.state, check.calculated_value) == ("Firing", 50)


@pytest.mark.parametrize(
    "ongoing,completed,lower,state,value",
    [
        (20, 5, None, "Firing", 20),  # the ongoing interval already went above
        (8, 5, None, "Not firing", 5),
        (8, 5, 6, "Firing", 5),  # below the lower bound: judged on the completed interval only
        (1, 7, 6, "Not firing", 7),  # an ongoing interval below `lower` is still filling up
    ],
)
def test_check_ongoing_interval(engine, team, insight, ongoing, completed, lower, state, value):
    engine.series([0, completed, ongoing])
    config = {"type": "TrendsAlertConfig", "series_index": 0, "check_ongoing_interval": True}
    alert, check = run(make_alert(team, insight, lower=lower, upper=10, config=config))
    assert (alert.state, check.calculated_value) == (state, value)


def test_total_value_display_uses_the_aggregated_value_over_the_insights_range(engine, team):
    bold = make_insight(team, BOLD_NUMBER_QUERY)
    engine.results = [{"label": "$pageview", "data": [], "days": [], "count": 0, "aggregated_value": 42}]
    alert, check = run(make_alert(team, bold, upper=40))
    assert (alert.state, check.calculated_value) == ("Firing", 42)
    assert "dateRange" not in engine.calls[0]["query"]


def test_empty_results_read_as_zero(engine, team, insight):
    engine.results = []
    alert, check = run(make_alert(team, insight, lower=1))
    assert (alert.state, check.calculated_value) == ("Firing", 0)


def test_breakdown_fires_if_any_value_breaches(engine, team, insight):
    with_query(insight, breakdownFilter={"breakdown": "$browser", "breakdown_type": "event"})
    engine.results = [
        {"label": "Chrome", "data": [0, 5, 0], "breakdown_value": "Chrome"},
        {"label": "Safari", "data": [0, 15, 0], "breakdown_value": "Safari"},
    ]
    alert, check = run(make_alert(team, insight, upper=10))
    assert (alert.state, check.calculated_value) == ("Firing", 15)
    engine.results[1]["data"] = [0, 9, 0]
    alert, check = run(alert, now=WEDNESDAY + timedelta(days=1))
    # No single value stands for a breakdown that did not fire.
    assert (alert.state, check.calculated_value) == ("Not firing", None)


def test_without_a_threshold_the_value_is_recorded_and_never_fires(engine, team, insight):
    engine.series([0, 1000, 0])
    alert = make_alert(team, insight, upper=1)
    AlertConfiguration.objects.filter(pk=alert.pk).update(threshold=None)
    alert, check = run(alert)
    assert (alert.state, check.calculated_value) == ("Not firing", 1000)


# -- relative conditions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition,threshold_type,before,completed,lower,upper,state,value",
    [
        ("relative_increase", "absolute", 10, 25, None, 10, "Firing", 15),
        ("relative_increase", "absolute", 10, 20, None, 10, "Not firing", 10),
        ("relative_increase", "absolute", 10, 12, 5, None, "Firing", 2),  # grew by less than 5
        ("relative_increase", "absolute", 10, 4, None, 10, "Not firing", -6),
        ("relative_increase", "percentage", 10, 16, None, 0.5, "Firing", 0.6),
        ("relative_increase", "percentage", 10, 14, None, 0.5, "Not firing", 0.4),
        ("relative_increase", "percentage", 10, 9, 0, None, "Firing", -0.1),
        ("relative_decrease", "absolute", 30, 10, None, 15, "Firing", 20),
        ("relative_decrease", "absolute", 30, 20, None, 15, "Not firing", 10),
        ("relative_decrease", "absolute", 30, 29, 5, None, "Firing", 1),
        ("relative_decrease", "percentage", 40, 10, None, 0.5, "Firing", 0.75),
        ("relative_decrease", "percentage", 40, 30, None, 0.5, "Not firing", 0.25),
        ("relative_decrease", "percentage", 0, 0, None, 0.5, "Not firing", 0),
    ],
)
def test_relative_conditions_compare_the_last_two_completed_intervals(
    engine, team, insight, condition, threshold_type, before, completed, lower, upper, state, value
):
    engine.series([before, completed, 1000])
    alert, check = run(make_alert(team, insight, lower=lower, upper=upper, threshold_type=threshold_type, condition=condition))
    assert alert.state == state
    assert check.calculated_value == pytest.approx(value)


def test_percentage_increase_from_zero_fires_without_a_storable_value(engine, team, insight):
    engine.series([0, 3, 0])
    alert, check = run(make_alert(team, insight, upper=1, threshold_type="percentage", condition="relative_increase"))
    assert (alert.state, check.calculated_value, alert.last_value) == ("Firing", None, None)


def test_relative_increase_can_fire_on_the_ongoing_interval(engine, team, insight):
    engine.series([10, 10, 30])
    config = {"type": "TrendsAlertConfig", "series_index": 0, "check_ongoing_interval": True}
    alert, check = run(make_alert(team, insight, upper=15, condition="relative_increase", config=config))
    assert (alert.state, check.calculated_value) == ("Firing", 20)


# -- errors --------------------------------------------------------------------------------------


def test_an_erroring_query_marks_only_that_alert_errored(engine, team, user, insight, caplog, monkeypatch):
    broken = make_alert(team, insight, [user], upper=1)
    fine = make_alert(team, make_insight(team, name="Fine"), [user], upper=1000)
    calls = []

    def engine_failing_once(team_, query, **kwargs):
        calls.append(query)
        if len(calls) == 1:
            raise RuntimeError("database is on fire")
        return {"results": [{"label": "x", "data": [0, 5, 0]}]}

    import queries

    monkeypatch.setattr(queries, "execute_query", engine_failing_once)
    summary = check_alerts([broken.id, fine.id], now=WEDNESDAY)
    assert (summary.checked, summary.errored, summary.not_firing) == (2, 1, 1)
    broken.refresh_from_db()
    check = broken.checks.get()
    assert broken.state == "Errored" and check.state == "Errored"
    assert check.error == {"message": "RuntimeError: database is on fire"} and check.calculated_value is None
    assert broken.next_check_at == WEDNESDAY + timedelta(days=1) - timedelta(hours=9)  # tomorrow 01:30 UTC
    assert AlertConfiguration.objects.get(pk=fine.pk).state == "Not firing"
    assert "Evaluating alert" in caplog.text


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda alert: AlertConfiguration.objects.filter(pk=alert.pk).update(config={"type": "TrendsAlertConfig", "series_index": 5}),
         "series_index 5 is out of range (query has 2 series)"),
        (lambda alert: Insight.objects.filter(pk=alert.insight_id).update(query=FUNNEL_QUERY),
         "Alert's insight query kind 'FunnelsQuery' is not supported (only TrendsQuery)"),
        (lambda alert: AlertConfiguration.objects.filter(pk=alert.pk).update(condition={"type": "nope"}),
         "Alert has invalid condition: {'type': 'nope'}"),
    ],
)
def test_alerts_that_no_longer_fit_their_insight_error(engine, team, insight, setup, message):
    engine.series([0, 1, 2], [0, 1, 2])
    alert = make_alert(team, insight, upper=1)
    setup(alert)
    alert, check = run(alert)
    assert alert.state == "Errored" and check.error == {"message": message}


def test_fewer_series_than_the_query_asks_for_errors(engine, team, insight):
    engine.series([0, 1, 2])
    alert, check = run(make_alert(team, insight, upper=1, config={"type": "TrendsAlertConfig", "series_index": 1}))
    assert check.error == {"message": "series_index 1 is out of range (results have 1 series)"}


def test_too_few_intervals_error(engine, team, insight):
    engine.series([7])
    alert, check = run(make_alert(team, insight, upper=1))
    assert check.error == {"message": "The series $pageview has too few intervals to evaluate the alert"}


def test_non_numeric_series_values_error(engine, team, insight):
    engine.results = [{"label": "x", "data": [0, "many", 0]}]
    alert, check = run(make_alert(team, insight, upper=1))
    assert check.error == {"message": "The series x has a non-numeric value: 'many'"}


def test_an_errored_alert_recovers(engine, team, insight):
    engine.error = RuntimeError("down")
    alert, _ = run(make_alert(team, insight, upper=1))
    assert alert.state == "Errored"
    engine.error = None
    engine.series([0, 5, 0])
    alert, check = run(alert, now=WEDNESDAY + timedelta(days=1))
    assert (alert.state, check.calculated_value) == ("Firing", 5)


# -- notifications -------------------------------------------------------------------------------


class RecordingBackend(NotificationBackend):
    sent: list = []

    def send(self, notification):
        RecordingBackend.sent.append(notification)
        return {"users": list(notification.recipients)}


class FailingBackend(NotificationBackend):
    def send(self, notification):
        raise ConnectionError("smtp down")


@pytest.fixture
def recorded(settings):
    settings.ALERT_NOTIFICATION_BACKENDS = ["tests.alerts.test_evaluation.RecordingBackend"]
    RecordingBackend.sent = []
    return RecordingBackend.sent


def test_firing_notifies_active_subscribers(engine, team, user, insight, recorded):
    other = make_member(team)
    gone = make_member(team, is_active=False)
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [user, other, gone], upper=10, name="Spike"))
    assert check.targets_notified == {"users": [user.email, other.email]}
    assert alert.last_notified_at == WEDNESDAY
    (notification,) = recorded
    assert notification.state == "Firing" and notification.value == 11 and notification.alert_name == "Spike"
    assert notification.recipients == (user.email, other.email)
    assert notification.breaches == ("$pageview: the value for the previous day is 11, above the upper threshold of 10",)
    assert notification.url.endswith(f"/project/{team.id}/insights/{insight.short_id}/alerts/{alert.id}")


def test_errors_notify_and_quiet_checks_do_not(engine, team, user, insight, recorded):
    engine.series([0, 1, 0])
    alert, check = run(make_alert(team, insight, [user], upper=10))
    assert check.targets_notified == {} and alert.last_notified_at is None and recorded == []
    engine.error = ValueError("bad")
    alert, check = run(alert, now=WEDNESDAY + timedelta(days=1))
    assert check.targets_notified == {"users": [user.email]} and recorded[0].error == "ValueError: bad"


def test_no_subscribers_no_notification(engine, team, insight, recorded):
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [], upper=10))
    assert alert.state == "Firing" and check.targets_notified == {} and recorded == []


def test_a_failing_backend_does_not_stop_the_check(engine, team, user, insight, settings, caplog):
    settings.ALERT_NOTIFICATION_BACKENDS = ["tests.alerts.test_evaluation.FailingBackend"]
    engine.series([0, 11, 0])
    alert, check = run(make_alert(team, insight, [user], upper=10))
    assert alert.state == "Firing" and check.targets_notified == {} and alert.last_notified_at is None
    assert "FailingBackend failed" in caplog.text


def test_default_backend_writes_a_log_entry(engine, team, user, insight, caplog):
    engine.series([0, 11, 0])
    with caplog.at_level(logging.WARNING, logger="alerts.notifications"):
        alert, check = run(make_alert(team, insight, [user], upper=10, name="Spike"))
    assert check.targets_notified == {"users": [user.email]}
    assert f"Alert Spike ({alert.id}) on insight {insight.short_id} is Firing" in caplog.text
    assert user.email in caplog.text


# -- snoozing, weekends, schedule ----------------------------------------------------------------


def test_snoozed_alert_is_not_checked_until_the_snooze_ends(engine, team, insight):
    engine.series([0, 11, 0])
    until = WEDNESDAY + timedelta(hours=3)
    alert = make_alert(team, insight, upper=10, state=AlertState.SNOOZED, snoozed_until=until)
    assert check_alert(alert.id, now=WEDNESDAY) == SKIPPED
    alert.refresh_from_db()
    assert (alert.state, alert.next_check_at, alert.checks.count(), engine.calls) == ("Snoozed", until, 0, [])
    assert alert.id not in due_alert_ids(WEDNESDAY + timedelta(hours=2))
    assert alert.id in due_alert_ids(until)

    alert, check = run(alert, now=until)
    assert (alert.state, alert.snoozed_until, check.state) == ("Firing", None, "Firing")


def test_snooze_through_the_api_then_check(engine, client, team, user, insight):
    engine.series([0, 11, 0])
    created = client.post(f"/api/projects/{team.id}/alerts/", alert_body(insight, [user], upper=10, snoozed_until="1d"), format="json").json()
    assert created["state"] == "Snoozed"
    assert check_alerts(due_alert_ids()).skipped == 1
    assert client.get(f"/api/projects/{team.id}/alerts/{created['id']}/").json()["state"] == "Snoozed"


@pytest.mark.parametrize(
    "tz,now,skipped",
    [
        ("UTC", datetime(2024, 5, 18, 12, tzinfo=UTC), True),  # Saturday
        ("UTC", datetime(2024, 5, 19, 23, tzinfo=UTC), True),  # Sunday
        ("UTC", datetime(2024, 5, 20, 0, 5, tzinfo=UTC), False),  # Monday
        ("Asia/Tokyo", datetime(2024, 5, 17, 16, tzinfo=UTC), True),  # Friday in UTC, Saturday 01:00 in Tokyo
        ("America/Los_Angeles", datetime(2024, 5, 18, 5, tzinfo=UTC), False),  # Friday 22:00 in Los Angeles
    ],
)
def test_skip_weekend_in_the_team_timezone(engine, team, insight, tz, now, skipped):
    team.timezone = tz
    team.save()
    engine.series([0, 11, 0])
    alert = make_alert(team, insight, upper=10, skip_weekend=True)
    assert (check_alert(alert.id, now=now) == SKIPPED) is skipped
    alert.refresh_from_db()
    if skipped:
        local_now = now.astimezone(ZoneInfo(tz))
        monday = (local_now + timedelta(days=7 - local_now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        assert alert.next_check_at == monday and alert.checks.count() == 0 and engine.calls == []
    else:
        assert alert.state == "Firing"


def test_weekend_checks_run_without_skip_weekend(engine, team, insight):
    engine.series([0, 1, 0])
    assert check_alert(make_alert(team, insight, upper=10).id, now=datetime(2024, 5, 18, 12, tzinfo=UTC)) == "Not firing"


@pytest.mark.parametrize(
    "interval,tz,now,expected",
    [
        ("hourly", "UTC", WEDNESDAY, datetime(2024, 5, 15, 11, 30, tzinfo=UTC)),
        ("daily", "UTC", WEDNESDAY, datetime(2024, 5, 16, 1, 30, tzinfo=UTC)),
        ("daily", "Europe/Berlin", WEDNESDAY, datetime(2024, 5, 15, 23, 30, tzinfo=UTC)),  # 01:30 in Berlin
        ("weekly", "UTC", WEDNESDAY, datetime(2024, 5, 20, 3, 30, tzinfo=UTC)),
        ("weekly", "UTC", datetime(2024, 5, 20, 3, 30, tzinfo=UTC), datetime(2024, 5, 27, 3, 30, tzinfo=UTC)),
        ("monthly", "UTC", WEDNESDAY, datetime(2024, 6, 1, 4, 30, tzinfo=UTC)),
        ("monthly", "UTC", datetime(2024, 12, 31, 23, 0, tzinfo=UTC), datetime(2025, 1, 1, 4, 0, tzinfo=UTC)),
    ],
)
def test_next_check_time(interval, tz, now, expected):
    assert next_check_time(interval, now, ZoneInfo(tz)) == expected


def test_which_alerts_are_due(team, insight):
    due_now = make_alert(team, insight, upper=1)
    due_past = make_alert(team, insight, upper=1, next_check_at=WEDNESDAY - timedelta(minutes=1))
    make_alert(team, insight, upper=1, next_check_at=WEDNESDAY + timedelta(minutes=1))
    make_alert(team, insight, upper=1, enabled=False)
    make_alert(team, make_insight(team, deleted=True), upper=1)
    assert set(due_alert_ids(WEDNESDAY)) == {due_now.id, due_past.id}


def test_a_claimed_alert_is_not_checked_twice(engine, team, insight):
    engine.series([0, 11, 0])
    alert = make_alert(team, insight, upper=10)
    AlertConfiguration.objects.filter(pk=alert.pk).update(next_check_at=WEDNESDAY + CLAIM_LEASE)  # another runner's claim
    assert check_alert(alert.id, now=WEDNESDAY) == SKIPPED
    assert check_alert(alert.id, now=WEDNESDAY + CLAIM_LEASE) == "Firing"  # the lease ran out
    assert check_alert(alert.id, now=WEDNESDAY + CLAIM_LEASE) == SKIPPED  # now due tomorrow
    assert check_alert(alert.id, now=WEDNESDAY + CLAIM_LEASE, force=True) == "Firing"
    assert alert.checks.count() == 2


def test_disabled_alerts_are_never_checked(engine, team, insight):
    alert = make_alert(team, insight, upper=10, enabled=False)
    assert check_alert(alert.id, now=WEDNESDAY, force=True) == SKIPPED and engine.calls == []


def test_changing_the_threshold_makes_the_alert_due_again(engine, client, team, user, insight):
    engine.series([0, 11, 0])
    alert = make_alert(team, insight, [user], upper=10)
    check_alert(alert.id)
    assert alert.id not in due_alert_ids()
    client.patch(f"/api/projects/{team.id}/alerts/{alert.id}/", {"threshold": {"configuration": {"type": "absolute", "bounds": {"upper": 20}}}}, format="json")
    assert alert.id in due_alert_ids()
    assert check_alert(alert.id) == "Not firing"


def test_old_checks_are_deleted(team, insight, settings):
    alert = make_alert(team, insight, upper=1)
    AlertCheck.objects.create(alert_configuration=alert, state="Firing", created_at=WEDNESDAY - timedelta(days=15))
    kept = AlertCheck.objects.create(alert_configuration=alert, state="Firing", created_at=WEDNESDAY - timedelta(days=13))
    assert delete_old_checks(WEDNESDAY) == 1
    assert list(AlertCheck.objects.all()) == [kept]
    settings.ALERT_CHECK_RETENTION_DAYS = 1
    assert delete_old_checks(WEDNESDAY) == 1


# -- the command and the Celery tasks ------------------------------------------------------------


def test_check_alerts_command_checks_due_alerts_and_shows_them_firing(engine, client, team, user, insight, capsys):
    engine.series([0, 11, 0])
    created = client.post(f"/api/projects/{team.id}/alerts/", alert_body(insight, [user], upper=10), format="json").json()
    make_alert(team, insight, upper=100)
    call_command("check_alerts")
    assert "Checked 2 alert(s): 1 firing, 1 not firing, 0 errored; 0 skipped." in capsys.readouterr().out
    body = client.get(f"/api/projects/{team.id}/alerts/{created['id']}/").json()
    assert body["state"] == "Firing" and body["last_value"] == 11
    assert body["last_checked_at"] is not None and body["next_check_at"] is not None and body["last_notified_at"] is not None
    assert [(c["state"], c["calculated_value"], c["targets_notified"]) for c in body["checks"]] == [("Firing", 11.0, True)]
    call_command("check_alerts")
    assert "Checked 0 alert(s)" in capsys.readouterr().out


def test_check_alerts_command_forces_named_alerts(engine, team, insight, capsys):
    engine.series([0, 11, 0])
    alert = make_alert(team, insight, upper=10, next_check_at=WEDNESDAY + timedelta(days=3650))
    call_command("check_alerts", "--alert", str(alert.id))
    assert "1 firing" in capsys.readouterr().out
    with pytest.raises(CommandError, match="UUID"):
        call_command("check_alerts", "--alert", "42")


def test_celery_tasks_fan_out_one_check_per_due_alert(engine, team, insight, monkeypatch):
    from alerts.tasks import check_due_alerts_task
    from insights_api.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)
    engine.series([0, 11, 0])
    alerts = [make_alert(team, insight, upper=10) for _ in range(2)]
    check_due_alerts_task()
    assert {AlertConfiguration.objects.get(pk=a.pk).state for a in alerts} == {"Firing"}
    assert AlertCheck.objects.count() == 2


def test_checks_never_store_non_finite_values(engine, team, insight):
    engine.series([0, math.inf, 0])
    alert, check = run(make_alert(team, insight, upper=10))
    assert alert.state == "Firing" and check.calculated_value is None
