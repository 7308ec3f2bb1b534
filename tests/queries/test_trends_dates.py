"""Intervals, date ranges, labels and timezones of TrendsQuery results."""
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from queries.dates import QueryDateRange
from queries.schema import DateRange
from tests.queries.events import events

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]


def pageviews(team, *moments, event="$pageview"):
    events(team, *[(event, f"user{i}", moment) for i, moment in enumerate(moments)])


def test_day_interval_labels_days_and_range(team, trends):
    pageviews(team, "2020-01-01 00:00", "2020-01-01 23:59:59", "2020-01-03 12:00", "2019-12-31 23:59:59", "2020-01-04 00:00")
    [result] = trends(dateRange={"date_from": "2020-01-01", "date_to": "2020-01-03"})
    assert result["data"] == [2, 0, 1]
    assert result["labels"] == ["1-Jan-2020", "2-Jan-2020", "3-Jan-2020"]
    assert result["days"] == ["2020-01-01", "2020-01-02", "2020-01-03"]
    assert result["action"]["days"] == ["2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z", "2020-01-03T00:00:00Z"]
    assert result["filter"]["date_from"] == "2020-01-01T00:00:00Z"
    assert result["filter"]["date_to"] == "2020-01-03T23:59:59.999999Z"


def test_hour_interval_with_one_absolute_day_is_one_bucket(team, trends):
    # PostHog: an absolute date_to is not rounded up for hourly insights.
    pageviews(team, "2020-01-09 00:00", "2020-01-09 00:59", "2020-01-09 01:00")
    [result] = trends(interval="hour", dateRange={"date_from": "2020-01-09", "date_to": "2020-01-09"})
    assert result["labels"] == ["9-Jan 00:00"]
    assert result["days"] == ["2020-01-09 00:00:00"]
    assert result["data"] == [1]  # only the instant 00:00 is in [00:00, 00:00]


def test_hour_interval_relative_range(team, trends, clock):
    clock("2020-01-10 15:30")
    pageviews(team, "2020-01-09 14:59", "2020-01-09 15:00", "2020-01-10 15:59")
    [result] = trends(interval="hour", dateRange={"date_from": "-24h"})
    assert len(result["data"]) == 25
    assert result["days"][0] == "2020-01-09 15:00:00" and result["days"][-1] == "2020-01-10 15:00:00"
    assert result["data"][0] == 1 and result["data"][-1] == 1 and sum(result["data"]) == 2


def test_minute_interval(team, trends, clock):
    clock("2020-01-10 15:30:20")
    pageviews(team, "2020-01-10 15:25:30", "2020-01-10 15:30:10", "2020-01-10 15:20:00")
    [result] = trends(interval="minute", dateRange={"date_from": "-5M"})
    assert result["days"] == [f"2020-01-10 15:{m}:00" for m in range(25, 31)]
    assert result["labels"][0] == "10-Jan 15:25"
    # date_from is not truncated for minute intervals: 15:25:20 onwards
    assert result["data"] == [1, 0, 0, 0, 0, 1]


def test_week_interval_starts_on_sunday_and_clamps_labels(team, trends):
    # Jan 5 2020 is a Sunday; the range starts Monday Jan 6
    pageviews(team, "2020-01-05 12:00", "2020-01-06 00:00", "2020-01-11 23:00", "2020-01-12 00:00", "2020-01-25 10:00")
    [result] = trends(interval="week", dateRange={"date_from": "2020-01-06", "date_to": "2020-01-25"})
    assert result["days"] == ["2020-01-05", "2020-01-12", "2020-01-19"]
    assert result["labels"] == ["6–11 Jan", "12–18 Jan", "19–25 Jan"]
    assert result["data"] == [2, 1, 1]  # the Sunday before date_from is outside the range


def test_week_labels_across_months_and_years():
    tz = ZoneInfo("UTC")
    now = datetime(2020, 3, 1, tzinfo=tz)
    span = QueryDateRange(DateRange(date_from="2019-12-25", date_to="2020-02-05"), tz=tz, interval="week", now=now)
    labels = [span.label(start) for start in span.bucket_starts()]
    assert labels[0] == "25–28 Dec"
    assert labels[1] == "29-Dec-2019 – 4-Jan-2020"
    assert labels[5] == "26-Jan – 1-Feb"
    assert labels[-1] == "2–5 Feb"


def test_monday_week_start():
    tz = ZoneInfo("UTC")
    span = QueryDateRange(DateRange(date_from="2020-01-08", date_to="2020-01-20"), tz=tz, interval="week",
                          now=datetime(2020, 2, 1, tzinfo=tz), week_start_day=1)
    assert [start.date().isoformat() for start in span.bucket_starts()] == ["2020-01-06", "2020-01-13", "2020-01-20"]


def test_month_interval_counts_from_the_start_of_the_month(team, trends):
    pageviews(team, "2020-01-01 00:00", "2020-01-20 00:00", "2020-02-15 12:00", "2020-02-29 23:00", "2020-03-01 00:00")
    [result] = trends(interval="month", dateRange={"date_from": "2020-01-15", "date_to": "2020-02-15"})
    assert result["labels"] == ["Jan 2020", "Feb 2020"]
    assert result["days"] == ["2020-01-01", "2020-02-01"]
    assert result["data"] == [2, 1]  # date_to is rounded to the end of its day, not of its month


def test_interval_count_groups_intervals(team, trends):
    pageviews(team, "2020-01-01 10:00", "2020-01-02 10:00", "2020-01-03 10:00", "2020-01-05 10:00")
    [result] = trends(intervalCount=2, dateRange={"date_from": "2020-01-01", "date_to": "2020-01-05"})
    assert result["days"] == ["2020-01-01", "2020-01-03", "2020-01-05"]
    assert result["data"] == [2, 1, 1]


@pytest.mark.parametrize(
    "date_from, first_day, buckets",
    [
        ("-7d", "2020-01-03", 8),
        ("-1w", "2020-01-03", 8),
        ("-1m", "2019-12-10", 32),
        ("mStart", "2020-01-01", 10),
        ("-1mStart", "2019-12-01", 41),
        ("yStart", "2020-01-01", 10),
        ("-1dStart", "2020-01-09", 2),
        (None, "2020-01-03", 8),  # default: 7 days back
    ],
)
def test_relative_date_from(team, trends, clock, date_from, first_day, buckets):
    clock("2020-01-10 15:30")
    pageviews(team, "2020-01-10 15:00")
    fields = {"dateRange": {"date_from": date_from}} if date_from else {}
    [result] = trends(**fields)
    assert result["days"][0] == first_day
    assert result["days"][-1] == "2020-01-10"
    assert len(result["data"]) == buckets
    assert result["data"][-1] == 1


def test_relative_date_to(team, trends, clock):
    clock("2020-01-10 15:30")
    pageviews(team, "2020-01-08 23:00", "2020-01-09 23:59:59", "2020-01-10 00:00")
    [result] = trends(dateRange={"date_from": "-3d", "date_to": "-1d"})
    assert result["days"] == ["2020-01-07", "2020-01-08", "2020-01-09"]
    assert result["data"] == [0, 1, 1]


def test_all_time_starts_at_the_first_event(team, trends, clock):
    clock("2020-01-10 15:30")
    pageviews(team, "2020-01-07 08:00", "2020-01-09 08:00")
    pageviews(team, "2019-06-01 08:00", event="other")
    [result] = trends(dateRange={"date_from": "all"})
    assert result["days"] == ["2020-01-07", "2020-01-08", "2020-01-09", "2020-01-10"]
    assert result["data"] == [1, 0, 1, 0]


def test_explicit_date_uses_exact_times(team, trends):
    pageviews(team, "2020-01-09 11:00", "2020-01-09 13:00", "2020-01-10 05:00", "2020-01-10 07:00")
    [result] = trends(dateRange={"date_from": "2020-01-09T12:00:00", "date_to": "2020-01-10T06:00:00", "explicitDate": True})
    assert result["days"] == ["2020-01-09", "2020-01-10"]
    assert result["data"] == [1, 1]
    assert result["filter"]["date_to"] == "2020-01-10T06:00:00Z"


def test_team_timezone(team, trends, run_query):
    team.timezone = "Europe/Paris"
    team.save()
    # 23:30 UTC on Jan 1 is 00:30 on Jan 2 in Paris
    pageviews(team, "2020-01-01 22:30", "2020-01-01 23:30", "2020-01-02 22:59")
    [result] = trends(dateRange={"date_from": "2020-01-01", "date_to": "2020-01-02"})
    assert result["data"] == [1, 2]
    assert result["action"]["days"][0] == "2020-01-01T00:00:00+01:00"
    response = run_query({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}],
                          "dateRange": {"date_from": "2020-01-01", "date_to": "2020-01-02"}})
    assert response.json()["timezone"] == "Europe/Paris"
    assert response.json()["resolved_date_range"] == {"date_from": "2020-01-01T00:00:00+01:00", "date_to": "2020-01-02T23:59:59.999999+01:00"}


def test_daylight_saving_days_are_local_days(team, trends):
    team.timezone = "America/New_York"
    team.save()
    # 2021-03-14 is 23 hours long in New York (clocks jump from 02:00 to 03:00)
    pageviews(
        team,
        "2021-03-14 04:30",  # Mar 13 23:30 EST
        "2021-03-14 05:30",  # Mar 14 00:30 EST
        "2021-03-15 03:30",  # Mar 14 23:30 EDT
        "2021-03-15 04:30",  # Mar 15 00:30 EDT
    )
    [result] = trends(dateRange={"date_from": "2021-03-13", "date_to": "2021-03-15"})
    assert result["days"] == ["2021-03-13", "2021-03-14", "2021-03-15"]
    assert result["data"] == [1, 2, 1]


def test_daylight_saving_hours(team, trends):
    team.timezone = "America/New_York"
    team.save()
    pageviews(team, "2021-03-14 06:15", "2021-03-14 07:15")  # 01:15 EST, 03:15 EDT
    [spring] = trends(interval="hour", dateRange={"date_from": "2021-03-14T00:00:00", "date_to": "2021-03-14T03:30:00"})
    assert spring["labels"] == ["14-Mar 00:00", "14-Mar 01:00", "14-Mar 03:00"]  # 02:00 does not exist
    assert spring["data"] == [0, 1, 1]
    pageviews(team, "2021-11-07 05:15", "2021-11-07 06:15", "2021-11-07 06:45")  # 01:15 EDT, 01:15 EST, 01:45 EST
    [autumn] = trends(interval="hour", dateRange={"date_from": "2021-11-07T00:00:00", "date_to": "2021-11-07T02:30:00"})
    assert autumn["days"] == ["2021-11-07 00:00:00", "2021-11-07 01:00:00", "2021-11-07 01:00:00", "2021-11-07 02:00:00"]
    assert autumn["data"] == [0, 1, 2, 0]  # 01:00 happens twice


def test_too_many_intervals_is_a_400(team, run_query, clock):
    clock("2020-01-10 15:30")
    response = run_query({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}],
                          "interval": "minute", "dateRange": {"date_from": "-30d"}}, refresh="force_blocking")
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "The date range has more than 10000 minute intervals. Use a shorter date range or a longer interval."
    )


def test_invalid_interval_is_a_parse_error(team, run_query):
    response = run_query({"kind": "TrendsQuery", "series": [], "interval": "fortnight"})
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
    assert "interval" in response.json()["detail"]


def test_date_range_resolution_without_database():
    span = QueryDateRange(None, tz=ZoneInfo("UTC"), interval="day", now=datetime(2020, 1, 10, 15, 30, tzinfo=ZoneInfo("UTC")))
    assert span.date_from() == datetime(2020, 1, 3, tzinfo=ZoneInfo("UTC"))
    assert span.date_to() == datetime(2020, 1, 10, 23, 59, 59, 999999, tzinfo=ZoneInfo("UTC"))
