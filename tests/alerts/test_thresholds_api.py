"""GET .../insights/:insight_id/thresholds/ and .../thresholds/:id/ (spec §8.1-§8.3)."""

import pytest

from alerts.models import Threshold
from tests.conftest import error
from tests.factories import make_member, make_team
from tests.scopes import Action, ScopeTestCases

from .conftest import ALERT_KEYS, THRESHOLD_KEYS, alert_body, make_alert, make_insight

pytestmark = pytest.mark.django_db


@pytest.fixture
def thresholds_url(team, insight):
    return f"/api/projects/{team.id}/insights/{insight.id}/thresholds/"


def test_a_threshold_created_with_an_alert_shows_under_its_insight(client, team, user, insight, thresholds_url):
    created = client.post(f"/api/projects/{team.id}/alerts/", alert_body(insight, [user], lower=2, upper=9), format="json").json()
    response = client.get(thresholds_url)
    assert response.status_code == 200
    page = response.json()
    assert list(page) == ["count", "next", "previous", "results"] and page["count"] == 1
    threshold = page["results"][0]
    assert list(threshold) == [*THRESHOLD_KEYS, "alerts"]
    assert threshold["id"] == created["threshold"]["id"]
    assert threshold["configuration"] == {"type": "absolute", "bounds": {"lower": 2, "upper": 9}}
    assert [list(alert) for alert in threshold["alerts"]] == [ALERT_KEYS]
    assert threshold["alerts"][0]["id"] == created["id"]
    assert threshold["alerts"][0]["threshold"]["id"] == threshold["id"]

    detail = client.get(f"{thresholds_url}{threshold['id']}/")
    assert detail.status_code == 200 and detail.json() == threshold
    environments = client.get(f"/api/environments/{team.id}/insights/{insight.id}/thresholds/{threshold['id']}")
    assert environments.status_code == 200


def test_only_the_insights_thresholds_newest_first(client, team, insight, thresholds_url):
    other_insight = make_insight(team, name="Other")
    older = make_alert(team, insight, upper=1).threshold
    newer = make_alert(team, insight, upper=2).threshold
    make_alert(team, other_insight, upper=3)
    assert [t["id"] for t in client.get(thresholds_url).json()["results"]] == [str(newer.id), str(older.id)]
    response = client.get(f"/api/projects/{team.id}/insights/{other_insight.id}/thresholds/{older.id}/")
    assert response.status_code == 404


def test_detached_threshold_lists_no_alerts(client, team, user, insight, thresholds_url):
    alert = make_alert(team, insight, [user], upper=1)
    assert client.patch(f"/api/projects/{team.id}/alerts/{alert.id}/", {"threshold": {}}, format="json").status_code == 200
    assert client.get(thresholds_url).json()["results"][0]["alerts"] == []


def test_list_queries_do_not_grow(client, team, insight, thresholds_url, django_assert_max_num_queries):
    users = [make_member(team) for _ in range(2)]
    for index in range(6):
        make_alert(team, insight, users, upper=index)
    with django_assert_max_num_queries(10):
        response = client.get(thresholds_url)
    assert response.json()["count"] == 6


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_writes_are_not_allowed(client, team, insight, thresholds_url, method):
    threshold = make_alert(team, insight, upper=1).threshold
    url = thresholds_url if method == "post" else f"{thresholds_url}{threshold.id}/"
    response = getattr(client, method)(url, {"configuration": {"type": "absolute"}}, format="json")
    assert response.status_code == 405
    assert response.json() == error("invalid_request", "method_not_allowed", f'Method "{method.upper()}" not allowed.')
    assert Threshold.objects.get(pk=threshold.pk).configuration["bounds"]["upper"] == 1


@pytest.mark.parametrize("insight_id", ["abc", "0", "999999"])
def test_unknown_or_malformed_insight(client, team, insight_id):
    response = client.get(f"/api/projects/{team.id}/insights/{insight_id}/thresholds/")
    if insight_id == "999999":
        assert response.status_code == 200 and response.json()["count"] == 0
    else:
        assert response.status_code == 404


@pytest.mark.parametrize("threshold_id", ["0b7c2f4e-8d1a-4f3b-9c6e-2a5d7e9f1c03", "nope"])
def test_unknown_threshold_is_404(client, thresholds_url, threshold_id):
    assert client.get(f"{thresholds_url}{threshold_id}/").status_code == 404


class TestThresholdScopes(ScopeTestCases.ReadActions):
    url = "/api/projects/{team.id}/insights/{obj.insight_id}/thresholds/"
    unrelated_scope = "insight:read"
    actions = {
        "list": Action("get", "", "alert:read"),
        "retrieve": Action("get", "{obj.id}/", "alert:read"),
    }

    def make_object(self, team, user):
        return make_alert(team, make_insight(team), upper=1).threshold


def test_other_teams_thresholds_are_invisible(client, team, insight):
    other_team = make_team()
    foreign_insight = make_insight(other_team)
    foreign = make_alert(other_team, foreign_insight, upper=1).threshold
    # Through my team's URL, the foreign insight has no thresholds and the threshold is unknown.
    assert client.get(f"/api/projects/{team.id}/insights/{foreign_insight.id}/thresholds/").json()["count"] == 0
    assert client.get(f"/api/projects/{team.id}/insights/{foreign_insight.id}/thresholds/{foreign.id}/").status_code == 404
    # Through the foreign team's URL: not a member.
    assert client.get(f"/api/projects/{other_team.id}/insights/{foreign_insight.id}/thresholds/").status_code == 403


def test_unauthenticated_write_is_401_not_405(anon_client, thresholds_url):
    assert anon_client.post(thresholds_url, {}, format="json").status_code == 401
