"""The alerts API: /api/projects/:id/alerts/ (spec §8.3, §8.4)."""
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from alerts.models import AlertCheck, AlertConfiguration, AlertState, Threshold
from insights.models import Insight
from tests.conftest import error
from tests.factories import make_member, make_team
from tests.scopes import Action, ScopeTestCases

from .conftest import (
    ALERT_KEYS,
    BOLD_NUMBER_QUERY,
    CHECK_KEYS,
    FUNNEL_QUERY,
    RETENTION_QUERY,
    SQL_QUERY,
    THRESHOLD_KEYS,
    USER_BASIC_KEYS,
    alert_body,
    make_alert,
    make_environment,
    make_insight,
)

pytestmark = pytest.mark.django_db


def create(client, base, body):
    response = client.post(base, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


# -- create and read ---------------------------------------------------------------------------


def test_create_returns_the_alert_with_its_threshold(client, base, team, user, insight):
    response = client.post(base, alert_body(insight, [user], upper=100), format="json")
    assert response.status_code == 201
    body = response.json()
    assert list(body) == ALERT_KEYS
    uuid.UUID(body["id"])
    assert body["name"] == "Too many pageviews"
    assert body["created_by"]["id"] == user.id and list(body["created_by"]) == USER_BASIC_KEYS
    assert body["insight"]["id"] == insight.id and body["insight"]["short_id"] == insight.short_id
    assert body["insight"]["query"] == insight.query and "search_match_type" not in body["insight"]
    assert [u["id"] for u in body["subscribed_users"]] == [user.id]
    assert list(body["subscribed_users"][0]) == USER_BASIC_KEYS
    assert list(body["threshold"]) == THRESHOLD_KEYS
    assert body["threshold"]["name"] == ""
    assert body["threshold"]["configuration"] == {"type": "absolute", "bounds": {"lower": None, "upper": 100}}
    assert body["condition"] == {"type": "absolute_value"}
    assert body["config"] == {"type": "TrendsAlertConfig", "series_index": 0}
    assert body["state"] == "Not firing"
    assert body["enabled"] is True
    assert body["checks"] == []
    assert body["detector_config"] is None
    assert body["calculation_interval"] == "daily"
    assert body["skip_weekend"] is False
    for key in ("last_notified_at", "last_checked_at", "next_check_at", "snoozed_until", "last_value"):
        assert body[key] is None, key

    threshold = Threshold.objects.get(pk=body["threshold"]["id"])
    assert (threshold.team_id, threshold.insight_id, threshold.created_by_id) == (team.id, insight.id, user.id)


def test_create_defaults_and_optional_fields(client, base, user, insight):
    body = alert_body(insight, [], lower=1, calculation_interval="hourly", enabled=False, skip_weekend=True)
    del body["name"]
    created = create(client, base, body)
    assert created["name"] == "" and created["subscribed_users"] == []
    assert created["calculation_interval"] == "hourly" and created["enabled"] is False and created["skip_weekend"] is True


def test_threshold_name_and_relative_percentage(client, base, user, insight):
    body = alert_body(insight, [user], upper=0.5, threshold_type="percentage", condition="relative_increase")
    body["threshold"]["name"] = "Spike"
    created = create(client, base, body)
    assert created["threshold"]["name"] == "Spike"
    assert created["condition"] == {"type": "relative_increase"}


def test_create_snoozed(client, base, user, insight):
    created = create(client, base, alert_body(insight, [user], upper=1, snoozed_until="2h"))
    assert created["state"] == "Snoozed"
    snoozed = datetime.fromisoformat(created["snoozed_until"])
    assert snoozed > timezone.now() and snoozed.minute == 0


def test_environments_route_serves_the_same_alerts(client, team, user, insight):
    created = create(client, f"/api/environments/{team.id}/alerts/", alert_body(insight, [user], upper=1))
    response = client.get(f"/api/projects/{team.id}/alerts/{created['id']}/")
    assert response.status_code == 200
    assert client.get(f"/api/environments/{team.id}/alerts").json()["count"] == 1


def test_list_is_paginated_newest_first_and_filters_by_insight(client, base, team, user, insight):
    other_insight = make_insight(team, name="Signups")
    first = create(client, base, alert_body(insight, [user], upper=1))
    second = create(client, base, alert_body(other_insight, [user], upper=2))
    response = client.get(base)
    assert response.status_code == 200
    page = response.json()
    assert list(page) == ["count", "next", "previous", "results"]
    assert page["count"] == 2 and [a["id"] for a in page["results"]] == [second["id"], first["id"]]
    assert all(alert["checks"] == [] for alert in page["results"])
    filtered = client.get(base, {"insight": insight.id}).json()
    assert [a["id"] for a in filtered["results"]] == [first["id"]]
    limited = client.get(base, {"limit": 1}).json()
    assert len(limited["results"]) == 1 and "offset=1" in limited["next"]


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", str(2**64)])
def test_list_refuses_a_malformed_insight_filter(client, base, value):
    response = client.get(base, {"insight": value})
    assert response.status_code == 400
    assert response.json() == error("validation_error", "invalid_input", "A valid integer is required.", "insight")


def test_list_queries_do_not_grow_with_the_page(client, base, team, insight, django_assert_max_num_queries):
    users = [make_member(team) for _ in range(3)]
    for index in range(8):
        make_alert(team, make_insight(team, name=f"Insight {index}"), users, upper=index)
    with django_assert_max_num_queries(9):
        response = client.get(base)
    assert response.json()["count"] == 8
    assert all(len(alert["subscribed_users"]) == 3 for alert in response.json()["results"])


def test_retrieve_has_the_last_five_checks_newest_first(client, base, team, user, insight):
    alert = make_alert(team, insight, [user], upper=1)
    now = timezone.now()
    for minutes in range(7):
        AlertCheck.objects.create(
            alert_configuration=alert,
            created_at=now - timedelta(minutes=minutes),
            calculated_value=float(minutes),
            state=AlertState.FIRING if minutes % 2 else AlertState.NOT_FIRING,
            targets_notified={"users": [user.email]} if minutes % 2 else {},
        )
    response = client.get(f"{base}{alert.id}/")
    assert response.status_code == 200
    checks = response.json()["checks"]
    assert [check["calculated_value"] for check in checks] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert list(checks[0]) == CHECK_KEYS
    assert [check["targets_notified"] for check in checks] == [False, True, False, True, False]
    assert [check["state"] for check in checks[:2]] == ["Not firing", "Firing"]


def test_retrieve_checks_within_a_time_window(client, base, team, user, insight):
    alert = make_alert(team, insight, [user], upper=1)
    now = timezone.now()
    for hours in (1, 2, 30, 50, 80, 100, 120):
        AlertCheck.objects.create(alert_configuration=alert, created_at=now - timedelta(hours=hours), calculated_value=float(hours),
                                  state=AlertState.NOT_FIRING)
    values = lambda body: [check["calculated_value"] for check in body["checks"]]  # noqa: E731
    body = client.get(f"{base}{alert.id}/", {"checks_date_from": "-24h"}).json()
    assert (values(body), body["checks_total"]) == ([1.0, 2.0], 2)
    # A window returns every check in it, not just the last five.
    body = client.get(f"{base}{alert.id}/", {"checks_date_from": "-6d"}).json()
    assert (values(body), body["checks_total"]) == ([1.0, 2.0, 30.0, 50.0, 80.0, 100.0, 120.0], 7)
    body = client.get(f"{base}{alert.id}/", {"checks_date_from": "-60h", "checks_date_to": "-24h", "checks_limit": 1}).json()
    assert (values(body), body["checks_total"]) == ([30.0], 2)
    iso = (now - timedelta(hours=90)).isoformat()
    body = client.get(f"{base}{alert.id}/", {"checks_date_to": iso, "checks_offset": 1}).json()
    assert (values(body), body["checks_total"]) == ([120.0], 2)
    assert client.get(f"{base}{alert.id}/").json()["checks_total"] == 7
    response = client.get(f"{base}{alert.id}/", {"checks_date_from": "-99999999999d"})
    assert response.status_code == 400 and response.json()["attr"] == "checks_date_from"


# -- update and delete -------------------------------------------------------------------------


def test_patch_threshold_updates_it_in_place_and_resets_the_alert(client, base, team, user, insight):
    created = create(client, base, alert_body(insight, [user], upper=10))
    AlertConfiguration.objects.filter(pk=created["id"]).update(state=AlertState.FIRING, next_check_at=timezone.now() + timedelta(days=1))
    response = client.patch(
        f"{base}{created['id']}/", {"threshold": {"configuration": {"type": "absolute", "bounds": {"upper": 20}}}}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["threshold"]["id"] == created["threshold"]["id"]
    assert body["threshold"]["configuration"] == {"type": "absolute", "bounds": {"upper": 20}}
    assert body["state"] == "Not firing" and body["next_check_at"] is None


def test_patch_name_only_keeps_state_and_schedule(client, base, team, user, insight):
    created = create(client, base, alert_body(insight, [user], upper=10))
    due = timezone.now() + timedelta(hours=5)
    AlertConfiguration.objects.filter(pk=created["id"]).update(state=AlertState.FIRING, next_check_at=due)
    body = client.patch(f"{base}{created['id']}/", {"name": "Renamed", "threshold": {"name": "T"}}, format="json").json()
    assert body["name"] == "Renamed" and body["threshold"]["name"] == "T"
    assert body["threshold"]["configuration"]["bounds"]["upper"] == 10
    assert body["state"] == "Firing" and body["next_check_at"] is not None


def test_patch_empty_threshold_detaches_it_and_a_dict_creates_one(client, base, team, user, insight):
    created = create(client, base, alert_body(insight, [user], upper=10))
    detached = client.patch(f"{base}{created['id']}/", {"threshold": {}}, format="json")
    assert detached.status_code == 200 and detached.json()["threshold"] is None
    assert Threshold.objects.filter(pk=created["threshold"]["id"]).exists()  # detached, not deleted

    name_only = client.patch(f"{base}{created['id']}/", {"threshold": {"name": "x"}}, format="json")
    assert name_only.status_code == 400
    assert name_only.json() == error("validation_error", "invalid_input", "This field is required.", "threshold__configuration")

    attached = client.patch(f"{base}{created['id']}/", {"threshold": {"configuration": {"type": "absolute", "bounds": {"lower": 3}}}}, format="json")
    assert attached.status_code == 200
    threshold = attached.json()["threshold"]
    assert threshold["id"] != created["threshold"]["id"] and threshold["configuration"]["bounds"] == {"lower": 3}


def test_patch_condition_config_interval_and_subscribers(client, base, team, user, insight):
    other = make_member(team)
    created = create(client, base, alert_body(insight, [user], upper=10))
    response = client.patch(
        f"{base}{created['id']}/",
        {
            "condition": {"type": "relative_increase"},
            "config": {"type": "TrendsAlertConfig", "series_index": 1, "check_ongoing_interval": True},
            "calculation_interval": "weekly",
            "subscribed_users": [other.id, other.id],
            "enabled": False,
            "skip_weekend": None,
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["condition"] == {"type": "relative_increase"}
    assert body["config"] == {"type": "TrendsAlertConfig", "series_index": 1, "check_ongoing_interval": True}
    assert body["calculation_interval"] == "weekly" and body["enabled"] is False and body["skip_weekend"] is None
    assert [u["id"] for u in body["subscribed_users"]] == [other.id]


def test_snooze_and_unsnooze_are_recorded_as_checks(client, base, team, user, insight):
    created = create(client, base, alert_body(insight, [user], upper=10))
    url = f"{base}{created['id']}/"
    snoozed = client.patch(url, {"snoozed_until": "2030-01-02T03:04:05Z"}, format="json").json()
    assert snoozed["state"] == "Snoozed" and snoozed["snoozed_until"] == "2030-01-02T03:04:05Z"
    unsnoozed = client.patch(url, {"snoozed_until": None}, format="json").json()
    assert unsnoozed["state"] == "Not firing" and unsnoozed["snoozed_until"] is None
    checks = client.get(url).json()["checks"]
    assert [(c["state"], c["calculated_value"], c["targets_notified"]) for c in checks] == [
        ("Not firing", None, False),
        ("Snoozed", None, False),
    ]


@pytest.mark.parametrize(
    "value,expected",
    [("1d", lambda now: (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)),
     ("3h", lambda now: (now + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)),
     ("1w", lambda now: (now + timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)),
     ("2030-05-06", lambda now: datetime(2030, 5, 6, tzinfo=UTC))],
)
def test_snooze_accepts_relative_times_and_dates(client, base, team, user, insight, value, expected):
    created = create(client, base, alert_body(insight, [user], upper=10))
    before = timezone.now()
    body = client.patch(f"{base}{created['id']}/", {"snoozed_until": value}, format="json").json()
    assert datetime.fromisoformat(body["snoozed_until"]) in {expected(before), expected(timezone.now())}


def test_put_replaces_the_alert(client, base, team, user, insight):
    created = create(client, base, alert_body(insight, [user], upper=10))
    body = alert_body(insight, [], lower=2, condition="relative_decrease", name="Replaced")
    response = client.put(f"{base}{created['id']}/", body, format="json")
    assert response.status_code == 200
    replaced = response.json()
    assert replaced["name"] == "Replaced" and replaced["subscribed_users"] == []
    assert replaced["threshold"]["id"] == created["threshold"]["id"]
    assert replaced["threshold"]["configuration"]["bounds"] == {"lower": 2, "upper": None}
    incomplete = client.put(f"{base}{created['id']}/", {"name": "x"}, format="json")
    assert incomplete.status_code == 400 and incomplete.json()["code"] == "required"


def test_moving_an_alert_to_another_insight_moves_its_threshold(client, base, team, user, insight):
    other_insight = make_insight(team, name="Other")
    created = create(client, base, alert_body(insight, [user], upper=10))
    body = client.patch(f"{base}{created['id']}/", {"insight": other_insight.id}, format="json").json()
    assert body["insight"]["id"] == other_insight.id
    assert Threshold.objects.get(pk=created["threshold"]["id"]).insight_id == other_insight.id


def test_delete_removes_the_alert_and_its_checks(client, base, team, user, insight):
    alert = make_alert(team, insight, [user], upper=1)
    AlertCheck.objects.create(alert_configuration=alert, state=AlertState.FIRING, calculated_value=2)
    response = client.delete(f"{base}{alert.id}/")
    assert response.status_code == 204
    assert client.get(f"{base}{alert.id}/").status_code == 404
    assert not AlertCheck.objects.exists()
    assert Threshold.objects.filter(pk=alert.threshold_id).exists()


# -- validation --------------------------------------------------------------------------------


def post_error(client, base, body):
    response = client.post(base, body, format="json")
    assert response.status_code == 400, response.json()
    return response.json()


@pytest.mark.parametrize(
    "change,expected",
    [
        (
            {"threshold": {"configuration": {"type": "absolute", "bounds": {"lower": 5, "upper": 1}}}},
            error("validation_error", "invalid_input", "Lower threshold must be less than upper threshold", "threshold__configuration"),
        ),
        (
            {"threshold": {"configuration": {"type": "absolute", "bounds": {"lower": 1}, "extra": 1}}},
            error("validation_error", "invalid_input", "Invalid threshold configuration: extra: Extra inputs are not permitted", "threshold__configuration"),
        ),
        (
            {"threshold": {"configuration": {"type": "absolute", "bounds": {"lower": 1, "middle": 2}}}},
            error("validation_error", "invalid_input", "Invalid threshold configuration: bounds.middle: Extra inputs are not permitted", "threshold__configuration"),
        ),
        (
            {"threshold": {"configuration": {"type": "relative", "bounds": {"lower": 1}}}},
            error("validation_error", "invalid_input", "Invalid threshold configuration: type: Input should be 'absolute' or 'percentage'", "threshold__configuration"),
        ),
        (
            {"threshold": {"configuration": {"type": "absolute", "bounds": {"lower": "1"}}}},
            error("validation_error", "invalid_input", "Invalid threshold configuration: bounds.lower: Input should be a valid number", "threshold__configuration"),
        ),
        ({"threshold": {}}, error("validation_error", "required", "This field is required.", "threshold__configuration")),
        ({"threshold": None}, error("validation_error", "null", "This field may not be null.", "threshold")),
        ({"condition": {"type": "absolute_value", "x": 1}}, error("validation_error", "invalid_input", "Alert has invalid condition: {'type': 'absolute_value', 'x': 1}")),
        ({"condition": None}, error("validation_error", "invalid_input", "Alert has invalid condition: None")),
        ({"condition": {"type": "above"}}, error("validation_error", "invalid_input", "Alert has invalid condition: {'type': 'above'}")),
        ({"config": None}, error("validation_error", "invalid_input", "Unsupported alert config type: None")),
        (
            {"config": {"type": "TrendsAlertConfig", "series_index": 0, "extra": True}},
            error("validation_error", "invalid_input", "Alert has invalid TrendsAlertConfig: extra: Extra inputs are not permitted"),
        ),
        (
            {"config": {"type": "TrendsAlertConfig", "series_index": "0"}},
            error("validation_error", "invalid_input", "Alert has invalid TrendsAlertConfig: series_index: Input should be a valid integer"),
        ),
        (
            {"config": {"type": "TrendsAlertConfig", "series_index": 2}},
            error("validation_error", "invalid_input", "series_index 2 is out of range (query has 2 series)"),
        ),
        (
            {"config": {"type": "TrendsAlertConfig", "series_index": 0, "check_ongoing_interval": True}, "threshold": {"configuration": {"type": "absolute", "bounds": {"lower": 1}}}},
            error("validation_error", "invalid_input", "check_ongoing_interval is only supported for alert condition absolute_value when upper threshold is specified"),
        ),
        (
            {"threshold": {"configuration": {"type": "percentage", "bounds": {"upper": 0.5}}}},
            error("validation_error", "invalid_input", "Absolute value alerts require an absolute threshold, but a percentage threshold was configured"),
        ),
        ({"calculation_interval": "yearly"}, error("validation_error", "invalid_choice", '"yearly" is not a valid choice.', "calculation_interval")),
        ({"snoozed_until": 5}, error("validation_error", "invalid_input", "snoozed_until has to be passed in string format", "snoozed_until")),
        (
            {"snoozed_until": "soon"},
            error("validation_error", "invalid_input", "snoozed_until must be an ISO 8601 datetime or a relative time like '2h' or '1d'.", "snoozed_until"),
        ),
        (
            {"detector_config": {"type": "zscore"}},
            error("validation_error", "invalid_input", "Anomaly detection alerts are not supported by this server.", "detector_config"),
        ),
        ({"name": "x" * 256}, error("validation_error", "max_length", "Ensure this field has no more than 255 characters.", "name")),
        ({"subscribed_users": "me"}, error("validation_error", "not_a_list", 'Expected a list of items but got type "str".', "subscribed_users")),
        ({"subscribed_users": [987654]}, error("validation_error", "does_not_exist", 'Invalid pk "987654" - object does not exist.', "subscribed_users")),
        ({"insight": "abc"}, error("validation_error", "incorrect_type", "Incorrect type. Expected pk value, received str.", "insight")),
    ],
)
def test_create_validation(client, base, user, insight, change, expected):
    assert post_error(client, base, {**alert_body(insight, [user], upper=10), **change}) == expected


@pytest.mark.parametrize("field", ["insight", "subscribed_users", "threshold"])
def test_required_fields(client, base, user, insight, field):
    body = alert_body(insight, [user], upper=10)
    del body[field]
    assert post_error(client, base, body) == error("validation_error", "required", "This field is required.", field)


def test_relative_condition_on_a_total_value_trend_is_refused(client, base, team, user):
    bold = make_insight(team, BOLD_NUMBER_QUERY)
    body = alert_body(bold, [user], upper=1, condition="relative_decrease")
    assert post_error(client, base, body) == error(
        "validation_error", "invalid_input", "Relative alert condition 'relative_decrease' is not compatible with non time series trends"
    )
    assert client.post(base, alert_body(bold, [user], upper=1), format="json").status_code == 201


@pytest.mark.parametrize("query,kind", [(FUNNEL_QUERY, "FunnelsQuery"), (SQL_QUERY, "HogQLQuery")])
def test_alertable_kinds_other_than_trends_need_a_trends_config(client, base, team, user, query, kind):
    body = alert_body(make_insight(team, query), [user], upper=1)
    assert post_error(client, base, body) == error(
        "validation_error", "invalid_input", f"Alert's insight query kind '{kind}' is not supported (only TrendsQuery)"
    )


@pytest.mark.parametrize("query", [RETENTION_QUERY, None])
def test_insights_that_are_not_alertable_are_refused(client, base, team, user, query):
    body = alert_body(make_insight(team, query), [user], upper=1)
    assert post_error(client, base, body) == error("validation_error", "invalid_input", "Alerts are not supported for this insight.", "insight")


def test_insight_of_another_project_or_deleted_is_not_found(client, base, user, insight):
    foreign = make_insight(make_team())
    deleted = make_insight(insight.team, deleted=True)
    for other in (foreign, deleted):
        assert post_error(client, base, alert_body(other, [user], upper=1)) == error(
            "validation_error", "does_not_exist", f'Invalid pk "{other.id}" - object does not exist.', "insight"
        )


def test_insight_of_another_environment_of_the_project_is_refused(client, base, team, user):
    sibling = make_environment(team)
    body = alert_body(make_insight(sibling), [user], upper=1)
    assert post_error(client, base, body) == error("validation_error", "invalid_input", "This insight does not belong to your team.", "insight")


def test_subscribers_must_belong_to_the_organization(client, base, user, insight):
    outsider = make_member(make_team())
    assert post_error(client, base, alert_body(insight, [user, outsider], upper=1)) == error(
        "validation_error", "invalid_input", "User does not belong to the same organization as the alert's team.", "subscribed_users"
    )


def test_inactive_users_cannot_be_subscribed(client, base, team, user, insight):
    inactive = make_member(team, is_active=False)
    assert post_error(client, base, alert_body(insight, [inactive], upper=1))["code"] == "does_not_exist"


def test_patch_validates_against_the_stored_alert(client, base, team, user, insight):
    created = create(client, base, alert_body(insight, [user], upper=10))
    url = f"{base}{created['id']}/"
    response = client.patch(url, {"threshold": {"configuration": {"type": "percentage", "bounds": {"upper": 1}}}}, format="json")
    assert response.json()["detail"] == "Absolute value alerts require an absolute threshold, but a percentage threshold was configured"
    response = client.patch(url, {"insight": make_insight(team, RETENTION_QUERY).id}, format="json")
    assert response.json()["detail"] == "Alerts are not supported for this insight."


def test_malformed_json_is_a_parse_error(client, base):
    response = client.post(base, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["type"] == "invalid_request" and response.json()["code"] == "parse_error"


def test_only_json_bodies_are_accepted(client, base, user, insight):
    response = client.post(base, {"insight": insight.id, "name": "x"})  # multipart form
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


# -- authorization and tenancy -----------------------------------------------------------------


class TestAlertScopes(ScopeTestCases.ReadActions, ScopeTestCases.WriteActions):
    url = "/api/projects/{team.id}/alerts/"
    unrelated_scope = "insight:read"
    actions = {
        "list": Action("get", "", "alert:read"),
        "retrieve": Action("get", "{obj.id}/", "alert:read"),
        "create": Action("post", "", "alert:write", status=201, body=lambda alert, user: alert_body(alert.insight, [user], upper=1)),
        "partial_update": Action("patch", "{obj.id}/", "alert:write", body={"name": "x"}),
        "update": Action("put", "{obj.id}/", "alert:write", body=lambda alert, user: alert_body(alert.insight, [user], upper=2)),
        "destroy": Action("delete", "{obj.id}/", "alert:write", status=204),
    }

    def make_object(self, team, user):
        return make_alert(team, make_insight(team), [user], upper=1)


def test_unauthenticated_is_401(anon_client, base):
    response = anon_client.get(base)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_other_teams_alerts_are_invisible(client, base, team, user, insight):
    other_team = make_team()
    foreign = make_alert(other_team, make_insight(other_team), upper=1)
    mine = make_alert(team, insight, [user], upper=1)
    assert [a["id"] for a in client.get(base).json()["results"]] == [str(mine.id)]
    for method in ("get", "patch", "delete"):
        assert getattr(client, method)(f"{base}{foreign.id}/", {}, format="json").status_code == 404
    assert AlertConfiguration.objects.filter(pk=foreign.pk).exists()
    # Another organization's project id: no membership.
    response = client.get(f"/api/projects/{other_team.id}/alerts/")
    assert response.status_code == 403 and response.json()["detail"] == "You don't have access to the project."
    assert client.get("/api/projects/999999/alerts/").status_code == 404


@pytest.mark.parametrize("alert_id", ["6a1f0f7e-2b8e-4c55-9a53-6f2d3c1b9e01", "not-a-uuid", "123"])
def test_unknown_alert_ids_are_404(client, base, alert_id):
    response = client.get(f"{base}{alert_id}/")
    assert response.status_code == 404
    assert response.json()["type"] == "invalid_request"


def test_alerts_of_another_environment_are_not_listed(client, team, user, insight):
    sibling = make_environment(team)
    make_alert(sibling, make_insight(sibling), upper=1)
    assert client.get(f"/api/projects/{team.id}/alerts/").json()["count"] == 0
    assert client.get(f"/api/environments/{sibling.id}/alerts/").json()["count"] == 1


def test_insight_basic_in_alert_is_live(client, base, team, user, insight):
    alert = make_alert(team, insight, [user], upper=1)
    Insight.objects.filter(pk=insight.pk).update(name="Renamed insight")
    assert client.get(f"{base}{alert.id}/").json()["insight"]["name"] == "Renamed insight"
