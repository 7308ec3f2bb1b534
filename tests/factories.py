"""factory-boy factories for the models tests build directly, and the few helpers around them.

Teams go through `create_project_with_team` (a team and its project share one id), so
`TeamFactory` and everything hanging off a team get a real project. Shares, thresholds and
alerts take their insight's team (pass `insight__team=team` to place a new insight); a tile's
new insight goes on its dashboard's team.
"""
import copy

import factory
from django.contrib.auth.hashers import make_password
from django.db.models import Max
from django.utils import timezone

from actions.models import Action
from accounts.models import Organization, OrganizationMembership, Project, Team, User
from accounts.services import create_personal_api_key, create_project_with_team
from alerts.models import AlertConfiguration, Threshold
from events.models import Event, Person, PersonDistinctId
from insights.models import Dashboard, DashboardTile, Insight
from insights.services import set_tags
from sharing.models import SharePassword, SharingConfiguration

TRENDS_QUERY = {
    "kind": "InsightVizNode",
    "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}]},
}


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Sequence(lambda n: f"User{n}")
    password = factory.PostGenerationMethodCall("set_password", "password123")


class TeamFactory(factory.django.DjangoModelFactory):
    """A project and its first environment, made the way the accounts service makes them."""

    class Meta:
        model = Team

    organization = factory.SubFactory(OrganizationFactory)
    name = "Default project"

    @classmethod
    def _create(cls, model_class, *, organization, name):
        return create_project_with_team(organization, name=name)


def make_team(organization=None, name="Default project"):
    return TeamFactory(name=name, **({"organization": organization} if organization else {}))


def make_environment(team, name="Staging") -> Team:
    """A second environment (team) of the team's project; ids are assigned explicitly, as accounts does."""
    next_id = max(Team.objects.aggregate(m=Max("id"))["m"] or 0, Project.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    return Team.objects.create(id=next_id, organization=team.organization, project=team.project, name=name)


def make_member(team, level=OrganizationMembership.Level.MEMBER, **user_fields):
    user = UserFactory(**user_fields)
    OrganizationMembership.objects.create(organization=team.organization, user=user, level=level)
    user.current_organization = team.organization
    user.current_team = team
    user.save()
    return user


def make_key(user, scopes=("*",), **kwargs):
    """Returns the raw key value."""
    _, raw = create_personal_api_key(user, label="test", scopes=list(scopes) if scopes is not None else None, **kwargs)
    return raw


# -- insights and dashboards --------------------------------------------------------------------


class InsightFactory(factory.django.DjangoModelFactory):
    """A saved trends insight; `tags=[...]` tags it through the tagging service."""

    class Meta:
        model = Insight
        skip_postgeneration_save = True

    team = factory.SubFactory(TeamFactory)
    name = "An insight"
    query = factory.LazyFunction(lambda: copy.deepcopy(TRENDS_QUERY))

    @factory.post_generation
    def tags(insight, create, names, **kwargs):
        if create and names:
            set_tags(insight, names)


class DashboardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dashboard

    team = factory.SubFactory(TeamFactory)
    name = "A dashboard"


class DashboardTileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DashboardTile

    dashboard = factory.SubFactory(DashboardFactory)
    insight = factory.SubFactory(InsightFactory, team=factory.SelfAttribute("..dashboard.team"))


# -- events and persons -------------------------------------------------------------------------


class PersonFactory(factory.django.DjangoModelFactory):
    """A person; `distinct_ids=[...]` links those distinct ids to it."""

    class Meta:
        model = Person
        skip_postgeneration_save = True

    team = factory.SubFactory(TeamFactory)
    properties = factory.LazyFunction(dict)

    @factory.post_generation
    def distinct_ids(person, create, values, **kwargs):
        if create and values:
            PersonDistinctId.objects.bulk_create(
                [PersonDistinctId(team_id=person.team_id, person=person, distinct_id=value) for value in values]
            )


class EventFactory(factory.django.DjangoModelFactory):
    """An event; `EventFactory.build_batch(...)` + `Event.objects.bulk_create` for many at once."""

    class Meta:
        model = Event

    team = factory.SubFactory(TeamFactory)
    event = "$pageview"
    distinct_id = factory.Sequence(lambda n: f"user-{n}")
    properties = factory.LazyFunction(dict)
    timestamp = factory.LazyFunction(timezone.now)


class ActionFactory(factory.django.DjangoModelFactory):
    """An action; `steps_json=[{"event": "$pageview", "url": "/pricing"}]` (omitted keys read as unset)."""

    class Meta:
        model = Action

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"action {n}")
    steps_json = factory.LazyFunction(lambda: [{"event": "$pageview"}])


# -- sharing and alerts -------------------------------------------------------------------------


class SharingConfigurationFactory(factory.django.DjangoModelFactory):
    """An insight's share; `passwords=[raw, ...]` adds active share passwords."""

    class Meta:
        model = SharingConfiguration
        skip_postgeneration_save = True

    insight = factory.SubFactory(InsightFactory)
    team = factory.SelfAttribute("insight.team")
    enabled = True

    @factory.post_generation
    def passwords(share, create, raws, **kwargs):
        if create and raws:
            SharePassword.objects.bulk_create(
                [SharePassword(sharing_configuration=share, password_hash=make_password(raw)) for raw in raws]
            )


class ThresholdFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Threshold

    insight = factory.SubFactory(InsightFactory)
    team = factory.SelfAttribute("insight.team")
    configuration = factory.LazyFunction(lambda: {"type": "absolute", "bounds": {"lower": None, "upper": None}})


class AlertConfigurationFactory(factory.django.DjangoModelFactory):
    """An alert on a trends insight with its threshold: `lower`/`upper`/`threshold_type` shape the threshold,
    `subscribed_users=[...]` subscribes users."""

    class Meta:
        model = AlertConfiguration
        skip_postgeneration_save = True

    class Params:
        lower = None
        upper = None
        threshold_type = "absolute"

    insight = factory.SubFactory(InsightFactory)
    team = factory.SelfAttribute("insight.team")
    threshold = factory.SubFactory(
        ThresholdFactory,
        insight=factory.SelfAttribute("..insight"),
        team=factory.SelfAttribute("..team"),
        configuration=factory.LazyAttribute(
            lambda threshold: {
                "type": threshold.factory_parent.threshold_type,
                "bounds": {"lower": threshold.factory_parent.lower, "upper": threshold.factory_parent.upper},
            }
        ),
    )
    condition = factory.LazyFunction(lambda: {"type": "absolute_value"})
    config = factory.LazyFunction(lambda: {"type": "TrendsAlertConfig", "series_index": 0})

    @factory.post_generation
    def subscribed_users(alert, create, users, **kwargs):
        if create and users:
            alert.subscribed_users.set(users)
