"""Alerts on funnels, SQL insights and trends breakdowns, computed by the real query engine; checks
paging and total; quiet hours (`schedule_restriction`) (issue 18 part 5)."""
from datetime import UTC, datetime, timedelta

import pytest

from alerts.checks import SKIPPED, check_alert
from alerts.models import AlertCheck, AlertConfiguration, AlertState
from tests.conftest import error

from .conftest import CHECK_KEYS, TRENDS_QUERY, alert_body, make_alert, make_insight

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 5, 15, 10, 30, tzinfo=UTC)  # a Wednesday
YESTERDAY = NOW.replace(hour=9) - timedelta(days=1)

FUNNEL = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "FunnelsQuery",
        "series": [{"kind": "EventsNode", "event": "visit"}, {"kind": "EventsNode", "event": "signup"}, {"kind": "EventsNode", "event": "pay"}],
    },
}
FUNNEL_BY_PLAN = {**FUNNEL, "source": {**FUNNEL["source"], "breakdownFilter": {"breakdown_type": "event", "breakdown": "plan"}}}
SQL = {
    "kind": "DataVisualizationNode",
    "source": {
        "kind": "HogQLQuery",
        "query": "select toDate(timestamp) as day, event as name, count() as total from events "
                 "where event = 'visit' group by day, name order by day",
    },
}
SQL_BY_EVENT = {
    "kind": "DataVisualizationNode",
    "source": {"kind": "HogQLQuery", "query": "select event as name, count() as total from events group by name order by name"},
}


@pytest.fixture(autouse=True)
def pinned_engine_clock(monkeypatch):
    import queries.clock

    monkeypatch.setattr(queries.clock, "now", lambda: NOW)


@pytest.fixture
def funnel_events(team):
    """10 visitors two days ago, 4 sign up, 1 pays (plan "pro" for visitors 0-1, "free" for the rest); 3 more
    "pro" visitors yesterday. Conversion to sign-up: pro 2/5, free 2/8."""
    from events.models import Event

    rows = []
    for index in range(10):
        plan = {"plan": "pro" if index < 2 else "free"}
        steps = ["visit"] + (["signup"] if index < 4 else []) + (["pay"] if index < 1 else [])
        rows += [Event(team=team, event=name, distinct_id=f"user-{index}", properties=plan,
                       timestamp=YESTERDAY - timedelta(days=1) + timedelta(minutes=index * 10 + step))
                 for step, name in enumerate(steps)]
    rows += [Event(team=team, event="visit", distinct_id=f"late-{index}", properties={"plan": "pro"}, timestamp=YESTERDAY) for index in range(3)]
    Event.objects.bulk_create(rows)


def run(alert, now=NOW):
    check_alert(alert.id, now=now, force=True)
    alert = AlertConfiguration.objects.get(pk=alert.pk)
    return alert, alert.checks.order_by("-created_at").first()


def post(client, team, body):
    return client.post(f"/api/projects/{team.id}/alerts/", body, format="json")


# -- funnels -------------------------------------------------------------------------------------------


def test_funnel_alert_is_created_with_posthogs_config_shape(client, team, user):
    insight = make_insight(team, FUNNEL)
    config = {"type": "FunnelsAlertConfig", "metric": "conversion_from_start", "funnel_step": None}
    response = post(client, team, alert_body(insight, [user], lower=50, config=config))
    assert response.status_code == 201, response.json()
    assert response.json()["config"] == config


@pytest.mark.parametrize(
    "config, lower, value, state",
    [
        ({"type": "FunnelsAlertConfig", "metric": "conversion_from_start", "funnel_step": None}, 20, 1 / 13 * 100, "Firing"),
        ({"type": "FunnelsAlertConfig", "metric": "conversion_from_start", "funnel_step": 1}, 30, 4 / 13 * 100, "Not firing"),
        ({"type": "FunnelsAlertConfig", "metric": "conversion_from_previous", "funnel_step": 2}, 30, 25.0, "Firing"),
        ({"type": "FunnelsAlertConfig", "metric": "conversion_from_previous", "funnel_step": 1}, 30, 4 / 13 * 100, "Not firing"),
    ],
)
def test_funnel_alert_reads_a_steps_conversion(team, funnel_events, config, lower, value, state):
    alert, check = run(make_alert(team, make_insight(team, FUNNEL), lower=lower, config=config))
    assert (check.state, check.error) == (state, None)
    assert check.calculated_value == pytest.approx(value)
    assert check.triggered_metadata is None  # one value: nothing to single out


def test_funnel_alert_with_a_breakdown_fires_when_any_value_breaches_and_records_which(client, team, user, funnel_events):
    config = {"type": "FunnelsAlertConfig", "metric": "conversion_from_start", "funnel_step": 1}
    alert = make_alert(team, make_insight(team, FUNNEL_BY_PLAN), lower=30, config=config)  # pro: 40%, free: 25%
    alert, check = run(alert)
    assert (check.state, check.calculated_value) == ("Firing", pytest.approx(2 / 8 * 100))
    assert check.triggered_metadata == {"funnel_step": 1, "breakdown_value": ["free"]}
    body = client.get(f"/api/projects/{team.id}/alerts/{alert.id}/").json()
    assert body["checks"][0]["triggered_metadata"] == {"funnel_step": 1, "breakdown_value": ["free"]}
    alert.threshold.configuration = {"type": "absolute", "bounds": {"lower": 20}}
    alert.threshold.save()
    _, check = run(alert, NOW + timedelta(minutes=1))
    assert (check.state, check.calculated_value, check.triggered_metadata) == ("Not firing", None, None)


@pytest.mark.parametrize(
    "config, condition, detail",
    [
        ({"type": "FunnelsAlertConfig", "metric": "conversion_from_start", "funnel_step": 3}, "absolute_value",
         "funnel_step 3 is out of range (funnel has 3 steps)."),
        ({"type": "FunnelsAlertConfig", "metric": "conversion_from_previous", "funnel_step": 0}, "absolute_value",
         "conversion_from_previous is undefined at the first step (there is no prior step); use conversion_from_start instead."),
        ({"type": "FunnelsAlertConfig", "metric": "conversion_from_start"}, "relative_increase",
         "This funnel only supports absolute value conditions"),
        ({"type": "FunnelsAlertConfig", "metric": "best"}, "absolute_value",
         "Alert has invalid FunnelsAlertConfig: metric: Input should be 'conversion_from_start' or 'conversion_from_previous'"),
        ({"type": "FunnelsAlertConfig", "metric": "conversion_from_start", "funnel_step": -1}, "absolute_value",
         "Alert has invalid FunnelsAlertConfig: funnel_step: Input should be greater than or equal to 0"),
        ({"type": "TrendsAlertConfig", "series_index": 0}, "absolute_value",
         "Alert's insight query kind 'FunnelsQuery' is not supported (only TrendsQuery)"),
        ({"type": "HogQLAlertConfig", "evaluation": "last_row"}, "absolute_value",
         "SQL alert config requires a HogQLQuery insight, got 'FunnelsQuery'"),
    ],
)
def test_bad_funnel_configs_are_400(client, team, user, config, condition, detail):
    response = post(client, team, alert_body(make_insight(team, FUNNEL), [user], lower=1, config=config, condition=condition))
    assert (response.status_code, response.json()) == (400, error("validation_error", "invalid_input", detail))


TRENDS_FUNNEL = {**FUNNEL, "source": {**FUNNEL["source"], "funnelsFilter": {"funnelVizType": "trends"}}}


def test_a_time_to_convert_funnel_is_refused(client, team, user):
    time_funnel = {**FUNNEL, "source": {**FUNNEL["source"], "funnelsFilter": {"funnelVizType": "time_to_convert"}}}
    config = {"type": "FunnelsAlertConfig", "metric": "conversion_from_start"}
    response = post(client, team, alert_body(make_insight(team, time_funnel), [user], lower=1, config=config))
    assert (response.status_code, response.json()) == (400, error(
        "validation_error", "invalid_input", "Funnel alerts aren't supported for the 'time_to_convert' visualization."))


@pytest.mark.parametrize(
    "condition, bounds, check_ongoing, state, value",
    [
        # The whole funnel converted 10% of two days ago's visitors and 0% of yesterday's.
        ("absolute_value", {"lower": 5}, None, "Firing", 0.0),  # yesterday: the last completed day
        ("absolute_value", {"upper": 5}, None, "Not firing", 0.0),
        ("relative_decrease", {"upper": 5}, None, "Firing", 10.0),  # 10% -> 0%
        ("relative_increase", {"upper": 5}, None, "Not firing", -10.0),
        ("absolute_value", {"upper": 50}, True, "Not firing", 0.0),  # today, still in progress
    ],
)
def test_trends_funnel_alert_reads_the_conversion_rate_per_period(client, team, user, funnel_events, condition, bounds, check_ongoing,
                                                                  state, value):
    config = {"type": "FunnelsAlertConfig", "metric": "conversion_from_start", "check_ongoing_interval": check_ongoing}
    response = post(client, team, alert_body(make_insight(team, TRENDS_FUNNEL), [user], config=config, condition=condition, **bounds))
    assert response.status_code == 201, response.json()
    alert, check = run(AlertConfiguration.objects.get(pk=response.json()["id"]))
    assert (check.state, check.error) == (state, None)
    assert check.calculated_value == pytest.approx(value)


def test_trends_funnel_alert_with_a_breakdown_records_the_breaching_value(team, funnel_events):
    by_plan = {**FUNNEL_BY_PLAN, "source": {**FUNNEL_BY_PLAN["source"], "funnelsFilter": {"funnelVizType": "trends"}}}
    config = {"type": "FunnelsAlertConfig", "metric": "conversion_from_start"}
    # Two days ago pro converted 1 of 2 visitors (50%), free none; yesterday only pro visited (0%).
    alert, check = run(make_alert(team, make_insight(team, by_plan), config=config, condition="relative_decrease", upper=20))
    assert (check.state, check.calculated_value) == ("Firing", pytest.approx(50.0))
    assert check.triggered_metadata == {"breakdown_value": ["pro"]}


# -- SQL insights --------------------------------------------------------------------------------------


def test_sql_alert_last_row_absolute_and_relative(client, team, user, funnel_events):
    insight = make_insight(team, SQL)
    config = {"type": "HogQLAlertConfig", "evaluation": "last_row", "column": "total", "label_column": None}
    created = post(client, team, alert_body(insight, [user], upper=2, config=config))
    assert created.status_code == 201, created.json()
    assert created.json()["config"] == config
    alert, check = run(AlertConfiguration.objects.get(pk=created.json()["id"]))
    assert (check.state, check.calculated_value) == ("Firing", 3.0)  # the last day had 3 visits
    # From 10 visits the day before to 3: a 70% decrease.
    relative = make_alert(team, insight, lower=None, upper=0.5, threshold_type="percentage", condition="relative_decrease", config=config)
    _, check = run(relative)
    assert (check.state, check.calculated_value) == ("Firing", pytest.approx(0.7))


def test_sql_alert_first_row_reads_a_newest_first_result(team, funnel_events):
    newest_first = {**SQL, "source": {**SQL["source"], "query": SQL["source"]["query"] + " desc"}}
    config = {"type": "HogQLAlertConfig", "evaluation": "first_row"}  # the only numeric column
    _, check = run(make_alert(team, make_insight(team, newest_first), lower=5, config=config))
    assert (check.state, check.calculated_value) == ("Firing", 3.0)
    increase = make_alert(team, make_insight(team, newest_first), lower=-5, condition="relative_increase", config=config)
    _, check = run(increase)
    assert (check.state, check.calculated_value) == ("Firing", -7.0)


def test_sql_alert_any_row_fires_on_a_breaching_row_and_records_it(team, funnel_events):
    config = {"type": "HogQLAlertConfig", "evaluation": "any_row", "column": "total"}
    alert, check = run(make_alert(team, make_insight(team, SQL_BY_EVENT), upper=5, config=config))
    assert (check.state, check.calculated_value) == ("Firing", 13.0)
    assert check.triggered_metadata == {"column": "total", "row": 3, "label": "visit"}  # rows: pay, signup, visit


@pytest.mark.parametrize(
    "config, condition, detail",
    [
        ({"type": "HogQLAlertConfig", "evaluation": "last_row", "column": "name"}, "absolute_value", "SQL alert column 'name' is not numeric."),
        ({"type": "HogQLAlertConfig", "evaluation": "last_row", "column": "nope"}, "absolute_value",
         "SQL alert column 'nope' is not in the result columns (day, name, total)."),
        ({"type": "HogQLAlertConfig", "evaluation": "any_row"}, "relative_increase", "Any-row SQL alerts only support absolute value conditions"),
        ({"type": "HogQLAlertConfig", "evaluation": "sometimes"}, "absolute_value",
         "Alert has invalid HogQLAlertConfig: evaluation: Input should be 'last_row', 'first_row' or 'any_row'"),
        ({"type": "HogQLAlertConfig"}, "absolute_value", "Alert has invalid HogQLAlertConfig: evaluation: Field required"),
        ({"type": "FunnelsAlertConfig", "metric": "conversion_from_start"}, "absolute_value",
         "Funnel alert config requires a FunnelsQuery insight, got 'HogQLQuery'"),
        ({"type": "NoSuchConfig"}, "absolute_value", "Unsupported alert config type: {'type': 'NoSuchConfig'}"),
    ],
)
def test_bad_sql_configs_are_400(client, team, user, funnel_events, config, condition, detail):
    response = post(client, team, alert_body(make_insight(team, SQL), [user], upper=1, config=config, condition=condition))
    assert (response.status_code, response.json()) == (400, error("validation_error", "invalid_input", detail))
    assert not AlertConfiguration.objects.exists()


def test_sql_alert_any_row_refuses_more_than_50_rows(team):
    from events.models import Event

    Event.objects.bulk_create([Event(team=team, event="visit", distinct_id=f"u{i}", properties={}, timestamp=YESTERDAY) for i in range(51)])
    per_user = {"kind": "HogQLQuery", "query": "select distinct_id, count() as total from events group by distinct_id"}
    _, check = run(make_alert(team, make_insight(team, per_user), upper=5, config={"type": "HogQLAlertConfig", "evaluation": "any_row"}))
    assert (check.state, check.error) == ("Errored", {
        "message": "Any-row SQL alerts evaluate at most 50 rows, but the query returned 51 — add a LIMIT or aggregate the query."})


def test_sql_alert_without_a_single_numeric_column_errors_its_check(team, funnel_events):
    two_numbers = {**SQL, "source": {**SQL["source"], "query": "select count() as a, count() as b from events"}}
    _, check = run(make_alert(team, make_insight(team, two_numbers), upper=1, config={"type": "HogQLAlertConfig", "evaluation": "last_row"}))
    assert check.state == "Errored"
    assert check.error == {"message": "SQL alert query returns 2 columns (a, b) and more than one of them is numeric — "
                                      "pick the column to evaluate in the alert settings."}


# -- trends with a breakdown ----------------------------------------------------------------------------


def test_trends_breakdown_check_records_the_breaching_value(client, team, funnel_events):
    by_plan = {**TRENDS_QUERY, "source": {**TRENDS_QUERY["source"], "series": [{"kind": "EventsNode", "event": "visit"}],
                                          "breakdownFilter": {"breakdown_type": "event", "breakdown": "plan"}}}
    from events.models import Event

    Event.objects.bulk_create([Event(team=team, event="visit", distinct_id=f"u{i}", properties={"plan": "free"}, timestamp=YESTERDAY) for i in range(4)])
    alert, check = run(make_alert(team, make_insight(team, by_plan), upper=3))
    assert (check.state, check.calculated_value) == ("Firing", 4.0)
    assert check.triggered_metadata == {"series_index": 0, "breakdown_value": "free"}
    body = client.get(f"/api/projects/{team.id}/alerts/{alert.id}/").json()
    assert list(body["checks"][0]) == CHECK_KEYS
    assert body["checks"][0]["triggered_metadata"] == {"series_index": 0, "breakdown_value": "free"}


def test_trends_breakdown_watches_only_the_configured_series(team, funnel_events):
    by_plan = {**TRENDS_QUERY, "source": {**TRENDS_QUERY["source"], "series": [{"kind": "EventsNode", "event": "visit"}, {"kind": "EventsNode", "event": "signup"}],
                                          "breakdownFilter": {"breakdown_type": "event", "breakdown": "plan"}}}
    from events.models import Event

    Event.objects.bulk_create([Event(team=team, event="visit", distinct_id=f"u{i}", properties={"plan": "free"}, timestamp=YESTERDAY) for i in range(4)])
    Event.objects.bulk_create([Event(team=team, event="signup", distinct_id=f"u{i}", properties={"plan": "pro"}, timestamp=YESTERDAY) for i in range(2)])
    config = {"type": "TrendsAlertConfig", "series_index": 1}
    _, check = run(make_alert(team, make_insight(team, by_plan), upper=3, config=config))  # 4 free visits are series 0
    assert (check.state, check.calculated_value) == ("Not firing", None)
    _, check = run(make_alert(team, make_insight(team, by_plan), upper=1, config=config))
    assert (check.state, check.calculated_value, check.triggered_metadata) == ("Firing", 2.0, {"series_index": 1, "breakdown_value": "pro"})


# -- checks paging and total ------------------------------------------------------------------------------


@pytest.fixture
def alert_with_checks(team):
    alert = make_alert(team, make_insight(team), upper=1)
    AlertCheck.objects.bulk_create([
        AlertCheck(alert_configuration=alert, created_at=NOW - timedelta(minutes=minutes), calculated_value=float(minutes), state=AlertState.NOT_FIRING)
        for minutes in range(8)
    ])
    return alert


def test_retrieve_pages_checks_and_counts_them(client, team, alert_with_checks):
    url = f"/api/projects/{team.id}/alerts/{alert_with_checks.id}/"
    default = client.get(url).json()
    assert ([c["calculated_value"] for c in default["checks"]], default["checks_total"]) == ([0.0, 1.0, 2.0, 3.0, 4.0], 8)
    page = client.get(url, {"checks_limit": 2, "checks_offset": 5}).json()
    assert ([c["calculated_value"] for c in page["checks"]], page["checks_total"]) == ([5.0, 6.0], 8)
    assert client.get(url, {"checks_offset": 8}).json()["checks"] == []
    listed = client.get(f"/api/projects/{team.id}/alerts/").json()["results"][0]
    assert (listed["checks"], listed["checks_total"]) == ([], None)


@pytest.mark.parametrize(
    "params, attr, detail",
    [
        ({"checks_limit": 0}, "checks_limit", "Ensure this value is an integer between 1 and 500."),
        ({"checks_limit": 501}, "checks_limit", "Ensure this value is an integer between 1 and 500."),
        ({"checks_limit": "ten"}, "checks_limit", "Ensure this value is an integer between 1 and 500."),
        ({"checks_offset": -1}, "checks_offset", "Ensure this value is an integer between 0 and 9223372036854775807."),
    ],
)
def test_bad_checks_paging_is_400(client, team, alert_with_checks, params, attr, detail):
    response = client.get(f"/api/projects/{team.id}/alerts/{alert_with_checks.id}/", params)
    assert (response.status_code, response.json()) == (400, error("validation_error", "invalid_input", detail, attr))


# -- schedule restriction (quiet hours) ---------------------------------------------------------------------


def test_schedule_restriction_is_normalized_on_save(client, team, user):
    restriction = {"blocked_windows": [{"start": "22:00", "end": "02:00"}, {"start": "09:00", "end": "10:00"}, {"start": "09:30", "end": "11:00"}]}
    response = post(client, team, alert_body(make_insight(team), [user], upper=1, schedule_restriction=restriction))
    assert response.status_code == 201, response.json()
    assert response.json()["schedule_restriction"] == {"blocked_windows": [
        {"start": "00:00", "end": "02:00"}, {"start": "09:00", "end": "11:00"}, {"start": "22:00", "end": "00:00"},
    ]}
    cleared = client.patch(f"/api/projects/{team.id}/alerts/{response.json()['id']}/", {"schedule_restriction": None}, format="json")
    assert cleared.json()["schedule_restriction"] is None


@pytest.mark.parametrize(
    "restriction, detail",
    [
        ({"blocked_windows": [{"start": "9:00", "end": "10:00"}]}, "Invalid schedule_restriction: '9:00' is not a time of day as HH:MM"),
        ({"blocked_windows": [{"start": "09:00", "end": "09:20"}]}, "Invalid schedule_restriction: the window 09:00-09:20 must span at least 30 minutes"),
        ({"blocked_windows": [{"start": "09:00", "end": "24:00"}]}, "Invalid schedule_restriction: '24:00' is not a time of day as HH:MM"),
        ({"blocked_windows": [{"start": f"0{n}:00", "end": f"0{n}:45"} for n in range(6)]},
         "Invalid schedule_restriction: at most 5 blocked windows are allowed"),
        ({"windows": []}, "Invalid schedule_restriction: blocked_windows: Field required; windows: Extra inputs are not permitted"),
    ],
)
def test_bad_schedule_restrictions_are_400(client, team, user, restriction, detail):
    response = post(client, team, alert_body(make_insight(team), [user], upper=1, schedule_restriction=restriction))
    assert (response.status_code, response.json()) == (400, error("validation_error", "invalid_input", detail, "schedule_restriction"))


def test_no_check_runs_in_quiet_hours_and_the_next_is_when_they_end(team):
    quiet = {"blocked_windows": [{"start": "10:00", "end": "11:15"}]}
    alert = make_alert(team, make_insight(team), upper=1, schedule_restriction=quiet)
    assert check_alert(alert.id, now=NOW) == SKIPPED  # 10:30 UTC (the project's timezone)
    alert.refresh_from_db()
    assert (alert.next_check_at, alert.checks.count()) == (NOW.replace(hour=11, minute=15), 0)
    assert check_alert(alert.id, now=NOW.replace(hour=11, minute=15)) == "Not firing"


def test_quiet_hours_past_midnight_end_the_next_day(team):
    quiet = {"blocked_windows": [{"start": "22:00", "end": "00:00"}, {"start": "00:00", "end": "06:00"}]}
    alert = make_alert(team, make_insight(team), upper=1, schedule_restriction=quiet)
    late = NOW.replace(hour=23)
    assert check_alert(alert.id, now=late) == SKIPPED
    alert.refresh_from_db()
    assert alert.next_check_at == (late + timedelta(days=1)).replace(hour=6, minute=0)
