"""Writes to dashboards."""
from django.db import transaction

from accounts.models import Team, User

from ..models import Dashboard, DashboardTile
from ..services import set_tags


@transaction.atomic
def create_dashboard(*, team: Team, user: User, data: dict, tags: list[str] | None) -> Dashboard:
    dashboard = Dashboard.objects.create(team=team, created_by=user, **data)
    if tags is not None:
        set_tags(dashboard, tags)
    return dashboard


@transaction.atomic
def update_dashboard(dashboard: Dashboard, *, data: dict, tags: list[str] | None, tiles: list[dict] | None = None) -> Dashboard:
    for field, value in data.items():
        setattr(dashboard, field, value)
    dashboard.save()
    if tags is not None:
        set_tags(dashboard, tags)
    if tiles:
        update_tiles(dashboard, tiles)
    return dashboard


def update_tiles(dashboard: Dashboard, changes: list[dict]) -> None:
    """Apply per-tile changes (layouts, color, deleted, filters_overrides) to the dashboard's own
    tiles, named by id, in one statement; ids were checked to be this dashboard's."""
    by_id = {change["id"]: change for change in changes}
    tiles = list(DashboardTile.objects_including_soft_deleted.filter(dashboard=dashboard, id__in=by_id))
    fields = set()
    for tile in tiles:
        for field, value in by_id[tile.id].items():
            if field != "id":
                setattr(tile, field, value)
                fields.add(field)
    if fields:
        DashboardTile.objects_including_soft_deleted.bulk_update(tiles, sorted(fields))
