"""Scope, key-restriction and membership permissions (PostHog's APIScopePermission and friends)."""
from rest_framework import exceptions, permissions

from .authentication import is_personal_api_key_request
from .models import OrganizationMembership

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
