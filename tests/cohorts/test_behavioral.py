"""The behavioral cohort types beyond performed_event, and behavioral filters on actions, as numbers
(PostHog's cohort query: windows relative to now, periods (start, end]).

Now is 2020-01-10 12:00 UTC. Persons and events:
  ann  signed up 01-02 10:00, paid 01-03 09:00          (paid 23 h after signing up)
  ben  signed up 01-02 10:00, paid 01-06 10:00          (4 days after)
  cat  paid 01-02 09:00, signed up 01-02 10:00          (wrong order)
  dan  signed up 2019-12-20 10:00, paid 2019-12-21      (before a 14-day window)
  eve  $pageview 01-09 10:00, 01-10 10:00
  fay  $pageview 01-10 10:00, 01-10 11:00
  gus  $pageview 01-06 10:00, 01-08 13:00
  hal  $pageview 01-09 12:00:00 (exactly now - 1 day), 01-09 12:00:01
  ivy  $pageview 01-05 10:00
  jay  $pageview 01-05 10:00, 01-09 10:00
  leo  $pageview 2019-12-20 10:00, 01-09 10:00
  mia  $pageview 2019-12-20 10:00, 01-05 10:00, 01-09 10:00
"""
import pytest

from actions.models import Action
from tests.conftest import error
from tests.queries.events import events, person

from .test_cohort_queries import members, tree

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("events_engine")]

NAMES = ("ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal", "ivy", "jay", "leo", "mia")


@pytest.fixture
def people(team, clock):
    clock("2020-01-10 12:00")
    for name in NAMES:
        person(team, name)
    pv = "$pageview"
    events(team,
           ("signed up", "ann", "2020-01-02 10:00"), ("paid", "ann", "2020-01-03 09:00"),
           ("signed up", "ben", "2020-01-02 10:00"), ("paid", "ben", "2020-01-06 10:00"),
           ("paid", "cat", "2020-01-02 09:00"), ("signed up", "cat", "2020-01-02 10:00"),
           ("signed up", "dan", "2019-12-20 10:00"), ("paid", "dan", "2019-12-21 10:00"),
           (pv, "eve", "2020-01-09 10:00"), (pv, "eve", "2020-01-10 10:00"),
           (pv, "fay", "2020-01-10 10:00"), (pv, "fay", "2020-01-10 11:00"),
           (pv, "gus", "2020-01-06 10:00"), (pv, "gus", "2020-01-08 13:00"),
           (pv, "hal", "2020-01-09 12:00:00"), (pv, "hal", "2020-01-09 12:00:01"),
           (pv, "ivy", "2020-01-05 10:00"),
           (pv, "jay", "2020-01-05 10:00"), (pv, "jay", "2020-01-09 10:00"),
           (pv, "leo", "2019-12-20 10:00"), (pv, "leo", "2020-01-09 10:00"),
           (pv, "mia", "2019-12-20 10:00"), (pv, "mia", "2020-01-05 10:00"), (pv, "mia", "2020-01-09 10:00"))


@pytest.fixture
def paid_action(team):
    return Action.objects.create(team=team, name="Paid", steps_json=[{"event": "paid"}]).id


def leaf(value, key="$pageview", **extra):
    return {"type": "behavioral", "key": key, "value": value, "event_type": "events", **extra}


def sequence(seq_days, **extra):
    return leaf("performed_event_sequence", "signed up", **{"time_value": 14, "time_interval": "day", "seq_event": "paid",
                "seq_event_type": "events", "seq_time_value": seq_days, "seq_time_interval": "day", **extra})


def regularly(operator, operator_value, min_periods, total_periods=3):
    return leaf("performed_event_regularly", time_value=1, time_interval="day", operator=operator, operator_value=operator_value,
                min_periods=min_periods, total_periods=total_periods)


STOPPED = leaf("stopped_performing_event", time_value=7, time_interval="day", seq_time_value=2, seq_time_interval="day")
RESTARTED = {**STOPPED, "value": "restarted_performing_event"}


@pytest.mark.parametrize("filters, expected", [
    (tree(sequence(2)), ["ann"]),
    (tree(sequence(5)), ["ann", "ben"]),
    (tree(sequence(5, time_value=8)), []),  # both signed up before the 8-day window
    (tree(sequence(5, time_value=None, explicit_datetime="2020-01-02 09:00")), ["ann", "ben"]),
    # The same event twice: two distinct events at most an hour apart (fay's are exactly an hour apart).
    (tree(leaf("performed_event_sequence", time_value=7, time_interval="day", seq_event="$pageview",
               seq_time_value=1, seq_time_interval="hour")), ["fay", "hal"]),
    # At least once a day on 2 of the last 3 days; hal's 12:00:00 belongs to the day before now - 1 day.
    (tree(regularly("gte", 1, 2)), ["eve", "hal"]),
    # At most once on each of the 3 days: days without the event count (0 <= 1); fay did it twice one day.
    (tree(regularly("lte", 1, 3)), ["eve", "gus", "hal", "jay", "leo", "mia"]),
    (tree(regularly("exact", 2, 1)), ["fay"]),
    (tree(STOPPED), ["ivy"]),
    (tree(RESTARTED), ["leo"]),
    (tree(leaf("performed_event", time_value=7, time_interval="day"), {**STOPPED, "negation": True}),
     ["eve", "fay", "gus", "hal", "jay", "leo", "mia"]),
])
def test_behavioral_types(client, cohorts_url, make_cohort, people, filters, expected):
    cohort = make_cohort(filters=filters)
    assert members(client, cohorts_url, cohort) == expected
    assert cohort["count"] == len(expected)


def test_behavioral_filters_on_actions(client, cohorts_url, make_cohort, people, paid_action):
    performed = make_cohort(filters=tree(leaf("performed_event", paid_action, event_type="actions", time_value=14, time_interval="day")))
    twice = make_cohort(filters=tree(leaf("performed_event_multiple", str(paid_action), event_type="actions", time_value=30,
                                          time_interval="day", operator="eq", operator_value=1)))
    into_action = make_cohort(filters=tree(sequence(2, seq_event=paid_action, seq_event_type="actions")))
    assert members(client, cohorts_url, performed) == ["ann", "ben", "cat"]
    assert members(client, cohorts_url, twice) == ["ann", "ben", "cat", "dan"]
    assert members(client, cohorts_url, into_action) == ["ann"]


@pytest.mark.parametrize("value, detail", [
    (leaf("performed_event", 999_999, event_type="actions", time_value=7, time_interval="day"), "Action ID 999999 does not exist!"),
    (regularly("gte", 1, 4), "min_periods (4) cannot be greater than total_periods (3)"),
    (regularly("gte", 1, 1, total_periods=1001), "total_periods can be at most 1000."),
    ({**STOPPED, "seq_time_value": 7}, "seq_time_value must be more recent than time_value."),
    ({**sequence(2), "seq_event": None}, "Behavioral filters (performed_event_sequence) need seq_event."),
    ({**STOPPED, "seq_time_value": None}, "Behavioral filters (stopped_performing_event) need seq_time_value and seq_time_interval."),
])
def test_malformed_behavioral_filters_are_400s(client, cohorts_url, people, value, detail):
    response = client.post(cohorts_url, {"name": "c", "filters": tree(value)}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", detail, "filters")


# --- Legacy `groups` ----------------------------------------------------------------------------------


def test_legacy_groups_become_filters(client, cohorts_url, make_cohort, people, paid_action):
    groups = [
        {"action_id": paid_action, "days": 14},                                   # ann, ben, cat
        {"event_id": "$pageview", "days": 1, "count": 2, "count_operator": "eq"},  # fay
        {"properties": [{"key": "$browser", "value": "Safari", "type": "event"}]},  # nobody has it
    ]
    cohort = make_cohort(groups=groups)
    assert cohort["groups"] == groups
    assert cohort["filters"] == {"properties": {"type": "OR", "values": [
        {"type": "AND", "values": [{"type": "behavioral", "key": paid_action, "value": "performed_event", "event_type": "actions",
                                    "time_interval": "day", "time_value": 14}]},
        {"type": "AND", "values": [{"type": "behavioral", "key": "$pageview", "value": "performed_event_multiple", "event_type": "events",
                                    "time_interval": "day", "time_value": 1, "operator": "eq", "operator_value": 2}]},
        {"type": "AND", "values": [{"type": "person", "key": "$browser", "value": "Safari", "operator": "exact"}]},
    ]}}
    assert members(client, cohorts_url, cohort) == ["ann", "ben", "cat", "fay"]


def test_legacy_groups_of_person_values_and_defaults(client, cohorts_url, make_cohort, team, people):
    from tests.queries.events import person as make_person

    make_person(team, "zoe", properties={"plan": "pro", "region": "eu"})
    make_person(team, "yan", properties={"plan": "pro"})
    by_values = make_cohort(groups=[{"properties": {"plan": "pro", "region": "eu"}}])
    by_event = make_cohort(groups=[{"event_id": "signed up"}])  # the last 365 days
    assert members(client, cohorts_url, by_values) == ["zoe"]
    assert members(client, cohorts_url, by_event) == ["ann", "ben", "cat", "dan"]


@pytest.mark.parametrize("groups, detail", [
    ({"properties": []}, "Must be a list."),
    ([{"days": 3}], "Each group must be an object with properties, action_id or event_id."),
])
def test_malformed_legacy_groups_are_400s(client, cohorts_url, groups, detail):
    response = client.post(cohorts_url, {"name": "c", "groups": groups}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", detail, "groups")


def test_another_projects_action_is_not_found(client, cohorts_url, people):
    from tests.factories import make_team

    other = Action.objects.create(team=make_team(name="Other"), name="Theirs", steps_json=[{"event": "paid"}])
    value = leaf("performed_event", other.id, event_type="actions", time_value=14, time_interval="day")
    response = client.post(cohorts_url, {"name": "c", "filters": tree(value)}, format="json")
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", f"Action ID {other.id} does not exist!", "filters")
    legacy = client.post(cohorts_url, {"name": "c", "groups": [{"action_id": other.id}]}, format="json")
    assert legacy.status_code == 400
    assert legacy.json() == error("validation_error", "invalid_input", f"Action ID {other.id} does not exist!", "filters")
