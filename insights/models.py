"""Saved insights, the dashboards they sit on, their tags and who viewed them."""
import secrets
import string
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Team

SHORT_ID_ALPHABET = string.ascii_letters + string.digits


def generate_short_id() -> str:
    """8 characters of [A-Za-z0-9]; uniqueness per team is left to the database constraint."""
    return "".join(secrets.choice(SHORT_ID_ALPHABET) for _ in range(8))


class Dashboard(models.Model):
    class RestrictionLevel(models.IntegerChoices):
        EVERYONE_IN_PROJECT_CAN_EDIT = 21, "Everyone in the project can edit"
        ONLY_COLLABORATORS_CAN_EDIT = 37, "Only those invited to this dashboard can edit"

    class PrivilegeLevel(models.IntegerChoices):
        CAN_VIEW = 21, "Can view dashboard"
        CAN_EDIT = 37, "Can edit dashboard"

    class CreationMode(models.TextChoices):
        DEFAULT = "default"
        TEMPLATE = "template"
        DUPLICATE = "duplicate"
        UNLISTED = "unlisted"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="dashboards")
    name = models.CharField(max_length=400, null=True, blank=True)
    description = models.TextField(blank=True, default="")
    pinned = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="created_dashboards"
    )
    deleted = models.BooleanField(default=False)
    creation_mode = models.CharField(max_length=16, choices=CreationMode.choices, default=CreationMode.DEFAULT)
    # Dashboard-wide filters and variable values, applied to its insights' queries by the query engine.
    filters = models.JSONField(default=dict, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    # Who may edit it and the insights on it (see insights/access.py).
    restriction_level = models.PositiveSmallIntegerField(
        choices=RestrictionLevel.choices, default=RestrictionLevel.EVERYONE_IN_PROJECT_CAN_EDIT
    )

    def __str__(self):
        return self.name or f"Dashboard {self.pk}"


class DashboardPrivilege(models.Model):
    """A collaborator of a restricted dashboard: a user invited with a privilege level."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, related_name="privileges")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="dashboard_privileges")
    level = models.PositiveSmallIntegerField(choices=Dashboard.PrivilegeLevel.choices)
    added_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dashboard", "user"], name="unique_dashboard_privilege")]


class LiveInsightManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(deleted=False)


class Insight(models.Model):
    # Only these keys in an update body bump last_modified_at/by (PostHog's MATERIAL_INSIGHT_FIELDS).
    MATERIAL_FIELDS = frozenset({"name", "description", "filters"})

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="insights")
    name = models.CharField(max_length=400, null=True, blank=True)
    # Stored as sent: clients derive a readable name from the query; the server never computes it.
    derived_name = models.CharField(max_length=400, null=True, blank=True)
    description = models.CharField(max_length=400, null=True, blank=True)
    filters = models.JSONField(default=dict, blank=True)  # legacy (pre-query) definition
    filters_hash = models.CharField(max_length=400, null=True, blank=True)
    query = models.JSONField(null=True, blank=True)
    order = models.IntegerField(null=True, blank=True)
    deleted = models.BooleanField(default=False)
    saved = models.BooleanField(default=True)
    refreshing = models.BooleanField(default=False)
    is_sample = models.BooleanField(default=False)
    favorited = models.BooleanField(default=False)
    short_id = models.CharField(max_length=12, blank=True, default=generate_short_id)
    created_at = models.DateTimeField(default=timezone.now, null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="created_insights"
    )
    last_modified_at = models.DateTimeField(default=timezone.now)
    last_modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="modified_insights"
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = LiveInsightManager()
    objects_including_soft_deleted = models.Manager()

    class Meta:
        base_manager_name = "objects_including_soft_deleted"
        constraints = [models.UniqueConstraint(fields=["team", "short_id"], name="unique_insight_team_short_id")]
        indexes = [models.Index(fields=["team", "deleted", "order"], name="insight_team_deleted_order")]

    def __str__(self):
        return self.name or self.derived_name or self.short_id


class LiveTileManager(models.Manager):
    """Tiles that are shown: not soft-deleted and on a dashboard that is not soft-deleted."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted=False, dashboard__deleted=False)


class Text(models.Model):
    """The body of a text tile on a dashboard (markdown, shown as written)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    body = models.CharField(max_length=4000, null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    last_modified_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    last_modified_at = models.DateTimeField(default=timezone.now)


class DashboardTile(models.Model):
    """An insight, or a text, shown on a dashboard."""

    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, related_name="tiles")
    insight = models.ForeignKey(Insight, on_delete=models.CASCADE, null=True, blank=True, related_name="dashboard_tiles")
    text = models.ForeignKey(Text, on_delete=models.CASCADE, null=True, blank=True, related_name="dashboard_tiles")
    layouts = models.JSONField(default=dict, blank=True)
    color = models.CharField(max_length=400, null=True, blank=True)
    deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # Dashboard filters this tile sets for itself, layered over the dashboard's own.
    filters_overrides = models.JSONField(default=dict, blank=True)

    # The default manager drives `insight.dashboard_tiles`, so hidden tiles never reach the API.
    objects = LiveTileManager()
    objects_including_soft_deleted = models.Manager()

    class Meta:
        base_manager_name = "objects_including_soft_deleted"
        constraints = [
            models.UniqueConstraint(fields=["dashboard", "insight"], name="unique_dashboard_insight_tile"),
            models.CheckConstraint(
                condition=models.Q(insight__isnull=False, text__isnull=True) | models.Q(insight__isnull=True, text__isnull=False),
                name="dashboard_tile_exactly_one_content",
            ),
        ]


class Tag(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_team_tag_name")]

    def __str__(self):
        return self.name


class TaggedItem(models.Model):
    """A tag on exactly one insight or dashboard."""

    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="tagged_items")
    insight = models.ForeignKey(Insight, on_delete=models.CASCADE, null=True, blank=True, related_name="tagged_items")
    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, null=True, blank=True, related_name="tagged_items")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tag", "insight"], name="unique_tag_insight"),
            models.UniqueConstraint(fields=["tag", "dashboard"], name="unique_tag_dashboard"),
            models.CheckConstraint(
                condition=models.Q(insight__isnull=False, dashboard__isnull=True)
                | models.Q(insight__isnull=True, dashboard__isnull=False),
                name="tagged_item_exactly_one_target",
            ),
        ]


class InsightViewed(models.Model):
    """One row per (team, user, insight), upserted on each view. Public shared-page views share a
    single anonymous row per insight (team and user null)."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    insight = models.ForeignKey(Insight, on_delete=models.CASCADE, related_name="views")
    last_viewed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user", "insight"], name="unique_insightviewed"),
            models.UniqueConstraint(
                fields=["insight"], condition=models.Q(user__isnull=True), name="unique_anonymous_insightviewed"
            ),
        ]
        indexes = [
            models.Index(fields=["insight", "last_viewed_at"], name="insightviewed_insight_time"),
            models.Index(fields=["team", "user", "last_viewed_at"], name="insightviewed_user_time"),
            models.Index(fields=["last_viewed_at"], name="insightviewed_time"),
        ]
