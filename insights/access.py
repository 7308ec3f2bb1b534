"""Who may edit a dashboard and the insights on it: PostHog's dashboard restriction levels.

A dashboard on `EVERYONE_IN_PROJECT_CAN_EDIT` (21) is editable by every member of the project. On
`ONLY_COLLABORATORS_CAN_EDIT` (37) only its owner (creator), the project's admins and the users
invited with `CAN_EDIT` may edit it; an insight on any such dashboard is editable by whoever may
edit at least one of its dashboards. Insights on no dashboard are editable by every member.

One `Access` per request: the user's admin level and dashboard privileges are each read at most
once, so a page of any size costs the same two queries at most.
"""
from functools import cached_property

from rest_framework.exceptions import PermissionDenied

from accounts.models import OrganizationMembership

from .models import Dashboard, DashboardPrivilege

EVERYONE = Dashboard.RestrictionLevel.EVERYONE_IN_PROJECT_CAN_EDIT
ONLY_COLLABORATORS = Dashboard.RestrictionLevel.ONLY_COLLABORATORS_CAN_EDIT
CAN_VIEW = Dashboard.PrivilegeLevel.CAN_VIEW
CAN_EDIT = Dashboard.PrivilegeLevel.CAN_EDIT

DASHBOARD_EDIT_DENIED = "You don't have edit permissions for this dashboard."
INSIGHT_EDIT_DENIED = (
    "This insight is on a dashboard that can only be edited by its owner, team members invited to editing the dashboard, "
    "and project admins."
)
RESTRICT_DENIED = (
    "Only the dashboard owner and project admins have the restriction rights required to change the dashboard's restriction level."
)


class Access:
    """The requesting user's rights on the dashboards and insights of one team's project."""

    def __init__(self, user, team):
        self.user = user
        self.team = team

    @property
    def _user_id(self):
        return getattr(self.user, "pk", None)

    @cached_property
    def is_project_admin(self) -> bool:
        if self._user_id is None or self.team is None:
            return False
        level = (OrganizationMembership.objects.filter(organization_id=self.team.organization_id, user_id=self._user_id)
                 .values_list("level", flat=True).first())
        return level is not None and level >= OrganizationMembership.Level.ADMIN

    @cached_property
    def privileges(self) -> dict[int, int]:
        """{dashboard id: level} of this user's invitations in the project."""
        if self._user_id is None or self.team is None:
            return {}
        rows = DashboardPrivilege.objects.filter(user_id=self._user_id, dashboard__team__project_id=self.team.project_id)
        return dict(rows.values_list("dashboard_id", "level"))

    # -- dashboards ---------------------------------------------------------------------------

    def can_restrict(self, dashboard) -> bool:
        """The owner and project admins hold inherent rights: they may change the restriction level."""
        if self._user_id is not None and dashboard.created_by_id == self._user_id:
            return True
        return self.is_project_admin

    def dashboard_privilege(self, dashboard) -> int:
        if dashboard.restriction_level < ONLY_COLLABORATORS or self.can_restrict(dashboard):
            return int(CAN_EDIT)
        return int(self.privileges.get(dashboard.pk, CAN_VIEW))

    def can_edit_dashboard(self, dashboard) -> bool:
        return dashboard.restriction_level < ONLY_COLLABORATORS or self.dashboard_privilege(dashboard) >= CAN_EDIT

    # -- insights (by the dashboards they are shown on) -----------------------------------------

    @staticmethod
    def insight_restriction(dashboards) -> int:
        return int(max((dashboard.restriction_level for dashboard in dashboards), default=EVERYONE))

    def insight_privilege(self, dashboards) -> int:
        if not dashboards or any(self.can_edit_dashboard(dashboard) for dashboard in dashboards):
            return int(CAN_EDIT)
        return int(CAN_VIEW)

    # -- refusals -------------------------------------------------------------------------------

    def require_dashboard_edit(self, dashboard) -> None:
        if not self.can_edit_dashboard(dashboard):
            raise PermissionDenied(DASHBOARD_EDIT_DENIED)

    def require_insight_edit(self, dashboards) -> None:
        if self.insight_privilege(dashboards) < CAN_EDIT:
            raise PermissionDenied(INSIGHT_EDIT_DENIED)


def access_level_name(privilege: int) -> str:
    """`user_access_level` of an object the user may read: editor where they may edit, else viewer."""
    return "editor" if privilege >= CAN_EDIT else "viewer"


def request_access(context: dict) -> Access:
    """The request's `Access`, made once and shared by every serializer of the response."""
    access = context.get("access")
    if access is None:
        request = context.get("request")
        access = context["access"] = Access(getattr(request, "user", None), context.get("team"))
    return access


def require_tile_changes(access: Access, requested, current) -> None:
    """Putting an insight on a dashboard, or taking it off, is editing that dashboard. Every
    change is checked before anything is written."""
    current_ids = {dashboard.id for dashboard in current}
    requested_ids = {dashboard.id for dashboard in requested}
    for dashboard in requested:
        if dashboard.id not in current_ids and not access.can_edit_dashboard(dashboard):
            raise PermissionDenied(f"You don't have permission to add insights to dashboard: {dashboard.id}")
    for dashboard in current:
        if dashboard.id not in requested_ids and not access.can_edit_dashboard(dashboard):
            raise PermissionDenied(f"You don't have permission to remove insights from dashboard: {dashboard.id}")
