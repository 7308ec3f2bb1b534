"""Writes for tenancy objects and personal API keys."""
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from .models import Organization, OrganizationMembership, PersonalAPIKey, Project, Team, User, hash_key_value, mask_key_value


@transaction.atomic
def create_project_with_team(organization: Organization, name: str = "Default project") -> Team:
    """A project and its first environment; the project takes the team's id, as in PostHog."""
    # Team ids and project ids share one sequence of values: next id = max of both + 1.
    next_id = max(Team.objects.aggregate(m=Max("id"))["m"] or 0, Project.objects.aggregate(m=Max("id"))["m"] or 0) + 1
    team = Team.objects.create(id=next_id, organization=organization, name=name)
    project = Project.objects.create(id=team.id, organization=organization, name=name)
    team.project = project
    team.save(update_fields=["project"])
    return team


@transaction.atomic
def create_organization(name: str, owner: User) -> tuple[Organization, Team]:
    organization = Organization.objects.create(name=name)
    OrganizationMembership.objects.create(organization=organization, user=owner, level=OrganizationMembership.Level.OWNER)
    team = create_project_with_team(organization)
    if owner.current_team_id is None:
        owner.current_organization = organization
        owner.current_team = team
        owner.save(update_fields=["current_organization", "current_team"])
    return organization, team


def create_personal_api_key(
    user: User,
    label: str,
    scopes: list[str] | None = None,
    scoped_teams: list[int] | None = None,
    scoped_organizations: list[str] | None = None,
) -> tuple[PersonalAPIKey, str]:
    """Returns the key and its raw value, which is never stored."""
    raw = PersonalAPIKey.generate_value()
    key = PersonalAPIKey.objects.create(
        user=user,
        label=label,
        secure_value=hash_key_value(raw),
        mask_value=mask_key_value(raw),
        scopes=scopes,
        scoped_teams=list(scoped_teams or []),
        scoped_organizations=[str(o) for o in scoped_organizations or []],
    )
    return key, raw


def roll_personal_api_key(key: PersonalAPIKey) -> str:
    """Gives the key a new value (returned, never stored) and invalidates the old one."""
    raw = PersonalAPIKey.generate_value()
    key.secure_value = hash_key_value(raw)
    key.mask_value = mask_key_value(raw)
    key.last_rolled_at = timezone.now()
    key.save(update_fields=["secure_value", "mask_value", "last_rolled_at"])
    return raw
