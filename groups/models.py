"""Group analytics: the group types of a project (company, organization...) and the groups themselves.

Ingestion (`groups.ingestion`) registers a type the first time an event's `$groups` names it and
upserts groups from `$groupidentify` events. Events keep `$groups` in their properties; queries
resolve `$group_<index>` from it through the project's mapping (queries.sql.groups).
"""
from django.db import models
from django.utils import timezone

from accounts.models import Project, Team

MAX_GROUP_TYPES_PER_PROJECT = 5


class GroupTypeMapping(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    group_type = models.CharField(max_length=400)
    group_type_index = models.IntegerField()
    name_singular = models.CharField(max_length=400, null=True, blank=True)
    name_plural = models.CharField(max_length=400, null=True, blank=True)
    default_columns = models.JSONField(null=True, blank=True)
    # PostHog links a dashboard made for the type's detail page; not made here, so always null.
    detail_dashboard = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "group_type"], name="unique_group_type_per_project"),
            models.UniqueConstraint(fields=["project", "group_type_index"], name="unique_group_type_index_per_project"),
            models.CheckConstraint(condition=models.Q(group_type_index__gte=0, group_type_index__lt=MAX_GROUP_TYPES_PER_PROJECT),
                                   name="group_type_index_in_range"),
        ]
        ordering = ["group_type_index"]


class Group(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)  # leads the unique index
    group_type_index = models.IntegerField()
    group_key = models.CharField(max_length=400)
    group_properties = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    version = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "group_type_index", "group_key"], name="unique_group_key_per_team"),
        ]
        indexes = [models.Index(fields=["team", "group_type_index", "-created_at"], name="group_team_type_created")]
