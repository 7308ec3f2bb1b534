"""The factories build consistent object graphs: everything hanging off an insight shares its team."""
import pytest
from django.contrib.auth.hashers import check_password

from accounts.models import PersonalAPIKey
from alerts.models import AlertConfiguration
from events.models import PersonDistinctId
from tests.factories import (
    AlertConfigurationFactory,
    DashboardTileFactory,
    EventFactory,
    InsightFactory,
    PersonFactory,
    SharingConfigurationFactory,
    TeamFactory,
    make_member,
)

pytestmark = pytest.mark.django_db


def test_a_team_is_a_project_and_its_first_environment():
    team = TeamFactory()
    assert team.project_id == team.id
    assert team.project.organization_id == team.organization_id


def test_insight_tags_go_through_the_tagging_service():
    insight = InsightFactory(tags=["Growth", "growth", "kpi"])
    assert sorted(insight.tagged_items.values_list("tag__name", flat=True)) == ["growth", "kpi"]
    assert insight.query["source"]["kind"] == "TrendsQuery"
    assert InsightFactory().query is not insight.query  # no shared default dict


def test_a_tile_puts_an_insight_of_the_dashboards_team_on_it():
    tile = DashboardTileFactory()
    assert tile.insight.team_id == tile.dashboard.team_id


def test_a_person_gets_its_distinct_ids_and_events_stay_personless_unless_given_one():
    person = PersonFactory(distinct_ids=["a", "b"])
    links = PersonDistinctId.objects.filter(person=person)
    assert sorted(links.values_list("distinct_id", flat=True)) == ["a", "b"]
    assert {link.team_id for link in links} == {person.team_id}
    event = EventFactory(team=person.team, distinct_id="a")
    assert event.person_id is None and event.event == "$pageview" and event.timestamp is not None
    assert EventFactory(team=person.team, distinct_id="a", person=person).person_id == person.id


def test_a_share_takes_its_insights_team_and_hashes_its_passwords():
    share = SharingConfigurationFactory(password_required=True, passwords=["correct horse"])
    assert share.team_id == share.insight.team_id and share.enabled
    [password] = share.share_passwords.all()
    assert password.is_active and check_password("correct horse", password.password_hash)


def test_an_alert_gets_a_threshold_on_its_insight_and_its_subscribers():
    insight = InsightFactory()
    subscriber = make_member(insight.team)
    alert = AlertConfigurationFactory(insight=insight, upper=5, threshold_type="percentage", subscribed_users=[subscriber])
    alert = AlertConfiguration.objects.select_related("threshold").get(pk=alert.pk)
    assert alert.team_id == insight.team_id
    assert (alert.threshold.insight_id, alert.threshold.team_id) == (insight.id, insight.team_id)
    assert alert.threshold.configuration == {"type": "percentage", "bounds": {"lower": None, "upper": 5}}
    assert alert.condition == {"type": "absolute_value"}
    assert list(alert.subscribed_users.all()) == [subscriber]


def test_api_client_makes_a_key_of_the_given_scopes_and_restrictions(api_client, team, user):
    other = TeamFactory(organization=team.organization)
    api_client(["insight:read"], team=other, organization=team.organization)
    key = PersonalAPIKey.objects.get(user=user)
    assert (key.scopes, key.scoped_teams, key.scoped_organizations) == (["insight:read"], [other.id], [str(team.organization_id)])
    api_client(None, user=make_member(team))
    assert PersonalAPIKey.objects.exclude(user=user).get().scopes is None
