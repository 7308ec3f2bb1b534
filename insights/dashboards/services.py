"""Writes to dashboards."""
from django.db import transaction

from accounts.models import Team, User

from ..models import Dashboard, DashboardTile
from ..selectors import tag_names
from ..services import create_insight, set_tags


@transaction.atomic
def create_dashboard(*, team: Team, user: User, data: dict, tags: list[str] | None,
                     source: Dashboard | None = None, duplicate_tiles: bool = False) -> Dashboard:
    """A new dashboard; with `source`, a duplicate of that dashboard's shown tiles (and, with
    `duplicate_tiles`, of their insights)."""
    if source is not None:
        data = {**data, "creation_mode": Dashboard.CreationMode.DUPLICATE}
    dashboard = Dashboard.objects.create(team=team, created_by=user, **data)
    if tags is not None:
        set_tags(dashboard, tags)
    if source is not None:
        _copy_tiles(source, dashboard, team=team, user=user, duplicate_insights=duplicate_tiles)
    return dashboard


def _copy_tiles(source: Dashboard, target: Dashboard, *, team: Team, user: User, duplicate_insights: bool) -> None:
    tiles = (DashboardTile.objects.filter(dashboard=source, insight__deleted=False).order_by("id")
             .select_related("insight").prefetch_related("insight__tagged_items__tag"))
    copies = []
    for tile in tiles:
        insight = tile.insight
        if duplicate_insights:
            fields = {"name": f"{insight.name} (Copy)" if insight.name else None, "derived_name": insight.derived_name,
                      "description": insight.description, "query": insight.query, "filters": insight.filters}
            insight = create_insight(team=team, user=user, data=fields, dashboards=None, tags=tag_names(insight))
        copies.append(DashboardTile(dashboard=target, insight=insight, layouts=tile.layouts, color=tile.color,
                                    filters_overrides=tile.filters_overrides))
    DashboardTile.objects.bulk_create(copies)


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
