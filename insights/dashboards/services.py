"""Writes to dashboards."""
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Team, User

from ..models import Dashboard, DashboardTile, Text
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
    tiles = (DashboardTile.objects.filter(Q(insight__isnull=True) | Q(insight__deleted=False), dashboard=source).order_by("id")
             .select_related("insight", "text").prefetch_related("insight__tagged_items__tag"))
    copies = []
    for tile in tiles:
        if tile.text_id is not None:
            # A duplicate's text tiles show the same text, or (duplicating tiles) a copy of it.
            text = Text.objects.create(team=team, body=tile.text.body, created_by=user) if duplicate_insights else tile.text
            copies.append(DashboardTile(dashboard=target, text=text, layouts=tile.layouts, color=tile.color))
            continue
        insight = tile.insight
        if duplicate_insights:
            fields = {"name": f"{insight.name} (Copy)" if insight.name else None, "derived_name": insight.derived_name,
                      "description": insight.description, "query": insight.query, "filters": insight.filters}
            insight = create_insight(team=team, user=user, data=fields, dashboards=None, tags=tag_names(insight))
        copies.append(DashboardTile(dashboard=target, insight=insight, layouts=tile.layouts, color=tile.color,
                                    filters_overrides=tile.filters_overrides))
    DashboardTile.objects.bulk_create(copies)


@transaction.atomic
def update_dashboard(dashboard: Dashboard, *, data: dict, tags: list[str] | None, tiles: list[dict] | None = None,
                     user: User | None = None) -> Dashboard:
    for field, value in data.items():
        setattr(dashboard, field, value)
    dashboard.save()
    if tags is not None:
        set_tags(dashboard, tags)
    if tiles:
        update_tiles(dashboard, tiles, user=user)
    return dashboard


def update_tiles(dashboard: Dashboard, changes: list[dict], *, user: User | None = None) -> None:
    """Apply per-tile changes (layouts, color, deleted, filters_overrides, a text's body) to the
    dashboard's own tiles, named by id, in a fixed number of statements; ids were checked to be
    this dashboard's. Changes without an id add text tiles."""
    now = timezone.now()
    new_texts = [change for change in changes if "id" not in change]
    if new_texts:
        texts = Text.objects.bulk_create([
            Text(team_id=dashboard.team_id, body=change["text"].get("body"), created_by=user, last_modified_at=now) for change in new_texts
        ])
        DashboardTile.objects.bulk_create([
            DashboardTile(dashboard=dashboard, text=text, **{field: value for field, value in change.items() if field != "text"})
            for text, change in zip(texts, new_texts)
        ])
    by_id = {change["id"]: change for change in changes if "id" in change}
    tiles = list(DashboardTile.objects_including_soft_deleted.filter(dashboard=dashboard, id__in=by_id).select_related("text"))
    fields, edited_texts = set(), []
    for tile in tiles:
        for field, value in by_id[tile.id].items():
            if field == "text":
                if "body" in value:
                    tile.text.body, tile.text.last_modified_by, tile.text.last_modified_at = value["body"], user, now
                    edited_texts.append(tile.text)
            elif field != "id":
                setattr(tile, field, value)
                fields.add(field)
    if fields:
        DashboardTile.objects_including_soft_deleted.bulk_update(tiles, sorted(fields))
    if edited_texts:
        Text.objects.bulk_update(edited_texts, ["body", "last_modified_by", "last_modified_at"])
