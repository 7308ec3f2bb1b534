"""Reads of group types and groups."""
from django.db.models import Q, QuerySet

from .models import Group, GroupTypeMapping


def project_group_types(team) -> QuerySet:
    """Group types are per project: every environment of it sees the same mapping."""
    return GroupTypeMapping.objects.filter(project_id=team.project_id).order_by("group_type_index")


def team_groups(team, *, group_type_index: int, search: str | None = None, group_key: str | None = None) -> QuerySet:
    """Groups of one type; `search` matches the properties' text or the exact key (case-insensitive),
    `group_key` is a case-insensitive substring of the key."""
    groups = Group.objects.filter(team=team, group_type_index=group_type_index)
    if search:
        groups = groups.filter(Q(group_properties__icontains=search) | Q(group_key__iexact=search))
    if group_key:
        groups = groups.filter(group_key__icontains=group_key)
    return groups
