"""Writes to insights, dashboards, tags and views, with their activity log entries."""
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from accounts.models import Team, User
from activity.services import change, changes_between, log_activity, snapshot

from . import signals
from .models import Dashboard, DashboardTile, Insight, InsightViewed, Tag, TaggedItem

INSIGHT_SCOPE = "Insight"
# Fields whose edits are not worth an activity entry (on top of activity's common exclusions).
INSIGHT_ACTIVITY_EXCLUSIONS = frozenset({"filters_hash", "refreshing", "order", "saved", "is_sample", "short_id"})


# -- tags --------------------------------------------------------------------------------------


def tagify(name: str) -> str:
    return name.strip().lower()


def set_tags(obj: Insight | Dashboard, names: list[str]) -> None:
    """Make `names` (normalised, de-duplicated) the object's tags; drop the team's unused tags."""
    wanted = sorted({tagify(name) for name in names} - {""})
    target = {"insight": obj} if isinstance(obj, Insight) else {"dashboard": obj}
    Tag.objects.bulk_create([Tag(team_id=obj.team_id, name=name) for name in wanted], ignore_conflicts=True)
    tags = Tag.objects.filter(team_id=obj.team_id, name__in=wanted)
    TaggedItem.objects.filter(**target).exclude(tag__name__in=wanted).delete()
    TaggedItem.objects.bulk_create([TaggedItem(tag=tag, **target) for tag in tags], ignore_conflicts=True)
    Tag.objects.filter(team_id=obj.team_id, tagged_items__isnull=True).delete()


def _tag_names(insight: Insight) -> list[str]:
    return sorted(TaggedItem.objects.filter(insight=insight).values_list("tag__name", flat=True))


# -- insights ----------------------------------------------------------------------------------


def _insight_state(insight: Insight) -> dict:
    return {**snapshot(insight, INSIGHT_ACTIVITY_EXCLUSIONS), "tags": _tag_names(insight)}


def _describe_dashboards(dashboards) -> list[dict]:
    return [{"id": dashboard.id, "name": dashboard.name} for dashboard in dashboards]


def _log_insight(activity: str, insight: Insight, user: User, team: Team, changes: list[dict] | None = None) -> None:
    # Insights saved without any name (e.g. by experiments) are not logged, as in PostHog.
    name = insight.name or insight.derived_name
    if name:
        log_activity(
            team=team, user=user, scope=INSIGHT_SCOPE, item_id=insight.id, activity=activity, name=name, short_id=insight.short_id, changes=changes
        )


def _refuse_other_environments(dashboards: list[Dashboard], team_id: int) -> None:
    # The serializer accepts any dashboard of the project; tiles stay within one environment.
    if any(dashboard.team_id != team_id for dashboard in dashboards):
        raise ValidationError("Dashboard not found")


@transaction.atomic
def create_insight(*, team: Team, user: User, data: dict, dashboards: list[Dashboard] | None, tags: list[str] | None) -> Insight:
    dashboards = [dashboard for dashboard in dashboards or [] if not dashboard.deleted]
    _refuse_other_environments(dashboards, team.id)
    data.pop("_create_in_folder", None)  # folders are not part of this API
    insight = Insight.objects.create(team=team, created_by=user, last_modified_by=user, **data)
    InsightViewed.objects.create(team=team, user=user, insight=insight, last_viewed_at=timezone.now())
    DashboardTile.objects.bulk_create([DashboardTile(dashboard=dashboard, insight=insight) for dashboard in dashboards])
    if tags is not None:
        set_tags(insight, tags)
    _log_insight("created", insight, user, team)
    return insight


@transaction.atomic
def update_insight(insight: Insight, *, team: Team, user: User, data: dict, dashboards: list[Dashboard] | None, tags: list[str] | None) -> Insight:
    """PATCH/PUT semantics of PostHog: soft delete and restore are updates of `deleted`."""
    before = _insight_state(insight)
    live_dashboards = sorted((tile.dashboard for tile in DashboardTile.objects.filter(insight=insight).select_related("dashboard")), key=lambda d: d.id)
    data.pop("_create_in_folder", None)
    data["is_sample"] = False  # the user has edited a sample, it is theirs now
    data.setdefault("saved", True)
    if data.keys() & Insight.MATERIAL_FIELDS:
        insight.last_modified_at = timezone.now()
        insight.last_modified_by = user

    dashboard_change = None
    if data.get("deleted"):
        DashboardTile.objects_including_soft_deleted.filter(insight=insight).update(deleted=True)
    elif dashboards is not None:
        requested = [dashboard for dashboard in dashboards if not dashboard.deleted]
        if _set_dashboards(insight, requested, live_dashboards):
            dashboard_change = change(INSIGHT_SCOPE, "changed", "dashboards", _describe_dashboards(live_dashboards), _describe_dashboards(requested))

    for field, value in data.items():
        setattr(insight, field, value)
    insight.save()
    if tags is not None:
        set_tags(insight, tags)

    if data.get("deleted"):
        signals.insight_soft_deleted.send(sender=Insight, insight=insight)
    elif "query" in data or "filters" in data:
        signals.insight_query_changed.send(sender=Insight, insight=insight)

    changes = changes_between(INSIGHT_SCOPE, before, _insight_state(insight))
    if dashboard_change:
        changes.append(dashboard_change)
    activity = "updated"
    deleted = next((c for c in changes if c["field"] == "deleted"), None)
    if deleted:
        activity = "deleted" if deleted["after"] else "restored"
    _log_insight(activity, insight, user, team, changes)
    return insight


def _set_dashboards(insight: Insight, requested: list[Dashboard], current: list[Dashboard]) -> bool:
    """Add and remove tiles so the insight is on exactly `requested`. False when nothing changes."""
    current_ids = {dashboard.id for dashboard in current}
    requested_ids = {dashboard.id for dashboard in requested}
    if current_ids == requested_ids:
        return False
    to_add = [dashboard for dashboard in requested if dashboard.id not in current_ids]
    _refuse_other_environments(to_add, insight.team_id)
    for dashboard in to_add:
        # Re-use (and un-delete) a tile the insight once had on this dashboard.
        tile, created = DashboardTile.objects_including_soft_deleted.get_or_create(insight=insight, dashboard=dashboard)
        if not created and tile.deleted:
            tile.deleted = False
            tile.save(update_fields=["deleted"])
    DashboardTile.objects.filter(insight=insight, dashboard_id__in=current_ids - requested_ids).update(deleted=True)
    return True


# -- views -------------------------------------------------------------------------------------


def record_insight_views(*, team: Team, user: User, insight_ids: list[int]) -> None:
    """Upsert this user's view of each live insight of the project, in one statement; other ids are dropped."""
    if not insight_ids:
        return
    viewed, insights, teams = InsightViewed._meta.db_table, Insight._meta.db_table, Team._meta.db_table
    placeholders = ", ".join(["%s"] * len(insight_ids))
    sql = (
        f"INSERT INTO {viewed} (team_id, user_id, insight_id, last_viewed_at) "
        f"SELECT %s, %s, i.id, %s FROM {insights} i JOIN {teams} t ON t.id = i.team_id "
        f"WHERE i.id IN ({placeholders}) AND i.deleted = %s AND t.project_id = %s "
        "ON CONFLICT (team_id, user_id, insight_id) DO UPDATE SET last_viewed_at = excluded.last_viewed_at"
    )
    with connection.cursor() as cursor:
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        cursor.execute(sql, [team.id, user.id, now, *insight_ids, False, team.project_id])


def record_anonymous_insight_view(insight: Insight) -> None:
    """A view of a public shared page: one row per insight with no team and no user."""
    now = timezone.now()
    if InsightViewed.objects.filter(insight=insight, user__isnull=True).update(last_viewed_at=now):
        return
    try:
        with transaction.atomic():
            InsightViewed.objects.create(team=None, user=None, insight=insight, last_viewed_at=now)
    except IntegrityError:  # created concurrently: the other request's view counts
        InsightViewed.objects.filter(insight=insight, user__isnull=True).update(last_viewed_at=now)


def bulk_update_insight_tags(*, team: Team, user: User, insights: list[Insight], action: str, names: list[str]) -> dict[int, list[str]]:
    """Add, remove or set the same tags on many insights at once; the tags each insight ends with.

    A fixed number of queries for any number of insights, plus one activity entry per changed insight.
    """
    wanted = sorted({tagify(name) for name in names} - {""})
    ids = [insight.id for insight in insights]
    before: dict[int, set[str]] = {insight_id: set() for insight_id in ids}
    for insight_id, name in TaggedItem.objects.filter(insight_id__in=ids).values_list("insight_id", "tag__name"):
        before[insight_id].add(name)
    with transaction.atomic():
        items = TaggedItem.objects.filter(insight_id__in=ids)
        if action == "remove":
            items.filter(tag__name__in=wanted).delete()
        elif action == "set":
            items.exclude(tag__name__in=wanted).delete()
        # Tags belong to the insight's own environment, which may be another one of the project.
        team_ids = {insight.team_id for insight in insights}
        if action in ("add", "set") and wanted:
            Tag.objects.bulk_create([Tag(team_id=team_id, name=name) for team_id in team_ids for name in wanted], ignore_conflicts=True)
            tags: dict[int, list[Tag]] = {}
            for tag in Tag.objects.filter(team_id__in=team_ids, name__in=wanted):
                tags.setdefault(tag.team_id, []).append(tag)
            TaggedItem.objects.bulk_create([TaggedItem(tag=tag, insight_id=insight.id) for insight in insights
                                            for tag in tags.get(insight.team_id, [])], ignore_conflicts=True)
        Tag.objects.filter(team_id__in=team_ids, tagged_items__isnull=True).delete()
        after = {}
        for insight in insights:
            old = before[insight.id]
            new = old | set(wanted) if action == "add" else old - set(wanted) if action == "remove" else set(wanted)
            after[insight.id] = sorted(new)
            if new != old:
                _log_insight("updated", insight, user, team, [change(INSIGHT_SCOPE, "changed", "tags", sorted(old), sorted(new))])
    return after
