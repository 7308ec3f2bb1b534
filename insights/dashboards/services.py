"""Writes to dashboards."""
from django.db import transaction

from accounts.models import Team, User

from ..models import Dashboard
from ..services import set_tags


@transaction.atomic
def create_dashboard(*, team: Team, user: User, data: dict, tags: list[str] | None) -> Dashboard:
    dashboard = Dashboard.objects.create(team=team, created_by=user, **data)
    if tags is not None:
        set_tags(dashboard, tags)
    return dashboard


@transaction.atomic
def update_dashboard(dashboard: Dashboard, *, data: dict, tags: list[str] | None) -> Dashboard:
    for field, value in data.items():
        setattr(dashboard, field, value)
    dashboard.save()
    if tags is not None:
        set_tags(dashboard, tags)
    return dashboard
