"""Scope, key-restriction and membership permissions (PostHog's APIScopePermission and friends)."""
from rest_framework import exceptions, permissions

from .authentication import is_personal_api_key_request
from .models import OrganizationMembership, Team

WRITE_ACTIONS = {"create", "update", "partial_update", "patch", "destroy"}
READ_ACTIONS = {"list", "retrieve"}


def required_scopes_for(view, request) -> list[str] | None:
    """The scopes an action needs: explicit `required_scopes`, else derived from `scope_object`."""
    explicit = getattr(view, "required_scopes", None)
    if explicit:
        return list(explicit)
    scope_object = getattr(view, "scope_object", None)
    if not scope_object:
        return None
    action = getattr(view, "action", None)
    if request.method == "OPTIONS" or action in READ_ACTIONS or action == "metadata":
        return [f"{scope_object}:read"]
    if action in WRITE_ACTIONS:
        return [f"{scope_object}:write"]
    return None


def key_has_scope(key_scopes: list[str], required: str) -> bool:
    if "*" in key_scopes or required in key_scopes:
        return True
    obj, _, level = required.partition(":")
    return level == "read" and f"{obj}:write" in key_scopes


class APIScopePermission(permissions.BasePermission):
    """Applies to personal-API-key requests only; session requests pass."""

    def has_permission(self, request, view):
        if not is_personal_api_key_request(request):
            return True
        key = request.auth
        if getattr(view, "is_team_scoped", False):
            team = view.team  # resolving an unknown team raises the 404
            self._check_key_restrictions(key, team)
            self._check_organization_allows_keys(request, team.organization)
        if not key.scopes:  # legacy unrestricted key
            return True
        required = required_scopes_for(view, request)
        if not required:
            raise exceptions.PermissionDenied("This action does not support Personal API Key access")
        for scope in required:
            if not key_has_scope(key.scopes, scope):
                raise exceptions.PermissionDenied(f"API key missing required scope '{scope}'")
        return True

    @staticmethod
    def _check_key_restrictions(key, team):
        if key.scoped_teams and team.id not in key.scoped_teams:
            raise exceptions.PermissionDenied(f"API key does not have access to the requested project: ID {team.id}.")
        organization_id = str(team.organization_id)
        if key.scoped_organizations and organization_id not in [str(o) for o in key.scoped_organizations]:
            raise exceptions.PermissionDenied(
                f"API key does not have access to the requested organization: ID {organization_id}."
            )

    @staticmethod
    def _check_organization_allows_keys(request, organization):
        if organization.members_can_use_personal_api_keys:
            return
        level = (
            OrganizationMembership.objects.filter(organization=organization, user=request.user)
            .values_list("level", flat=True)
            .first()
        )
        if level is None or level < OrganizationMembership.Level.ADMIN:
            raise exceptions.PermissionDenied(
                f"Organization '{organization.name}' does not allow using personal API keys. "
                "Contact an admin to enable personal API keys for this organization."
            )


class TeamMemberAccessPermission(permissions.BasePermission):
    """The user must belong to the organization owning the URL's team."""

    message = "You don't have access to the project."

    def has_permission(self, request, view):
        if not getattr(view, "is_team_scoped", False):
            return True
        team = view.team
        if not OrganizationMembership.objects.filter(organization_id=team.organization_id, user=request.user).exists():
            raise exceptions.PermissionDenied(self.message)
        return True


def check_key_covers(actor, *, verb: str, scopes, scoped_teams, scoped_organizations) -> None:
    """A personal API key may only create, roll or delete keys that grant no more than it does itself.

    `actor` is the key the request is authenticated with (None for session requests, which may do
    anything to their own keys). Raises a 403 naming the first scope, project or organization that
    exceeds the actor's own access.
    """
    if actor is None:
        return
    if actor.scopes:
        for scope in scopes or ["*"]:
            if not key_has_scope(actor.scopes, scope):
                raise exceptions.PermissionDenied(
                    f"API key cannot {verb} a key with scope '{scope}': it exceeds the scopes of the key making the request."
                )
    team_ids = [int(t) for t in scoped_teams or []]
    if actor.scoped_teams:
        allowed = set(actor.scoped_teams)
        if not team_ids:
            raise exceptions.PermissionDenied(
                f"API key cannot {verb} a key with access to all projects: the key making the request is restricted "
                f"to projects {sorted(allowed)}."
            )
        for team_id in team_ids:
            if team_id not in allowed:
                raise exceptions.PermissionDenied(
                    f"API key cannot {verb} a key with access to project ID {team_id}: the key making the request "
                    "does not have access to it."
                )
    if actor.scoped_organizations:
        allowed_orgs = {str(o) for o in actor.scoped_organizations}
        organization_ids = [str(o) for o in scoped_organizations or []]
        if not organization_ids and team_ids:
            # Restricted to projects only: those projects must belong to the actor's organizations.
            organization_ids = [str(o) for o in Team.objects.filter(id__in=team_ids).values_list("organization_id", flat=True)]
        if not organization_ids:
            raise exceptions.PermissionDenied(
                f"API key cannot {verb} a key with access to all organizations: the key making the request is "
                f"restricted to organizations {sorted(allowed_orgs)}."
            )
        for organization_id in organization_ids:
            if organization_id not in allowed_orgs:
                raise exceptions.PermissionDenied(
                    f"API key cannot {verb} a key with access to organization ID {organization_id}: the key making "
                    "the request does not have access to it."
                )
