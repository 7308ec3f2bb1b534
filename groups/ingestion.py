"""What capture does with groups: register new group types, upsert groups from `$groupidentify`.

Called once per ingested batch, inside its transaction, with a constant number of queries: the
project's mappings, the identified groups, and bulk writes. An IntegrityError (a concurrent request
took the same index or created the same group) rolls the batch back and capture runs it again.
"""
from typing import Iterable

from accounts.models import Team
from events.clickhouse import is_enabled as clickhouse_enabled

from .models import MAX_GROUP_TYPES_PER_PROJECT, Group, GroupTypeMapping

GROUP_IDENTIFY = "$groupidentify"
MAX_GROUP_KEY_LENGTH = Group._meta.get_field("group_key").max_length
MAX_GROUP_TYPE_LENGTH = GroupTypeMapping._meta.get_field("group_type").max_length


def _event_group_types(event) -> list[str]:
    types = []
    groups = event.properties.get("$groups")
    if isinstance(groups, dict):  # anything else is ignored, as PostHog does
        types.extend(str(name) for name in groups)
    if event.event == GROUP_IDENTIFY and event.properties.get("$group_type") not in (None, ""):
        types.append(str(event.properties["$group_type"]))
    return [name for name in types if name and len(name) <= MAX_GROUP_TYPE_LENGTH]


def record_groups(team_id: int, events: Iterable) -> None:
    """Register the group types the events name (first come, next free index, at most 5 per project)
    and merge `$groupidentify`'s `$group_set` into the identified groups (newer values win)."""
    events = list(events)
    named = [name for event in events for name in _event_group_types(event)]
    if not named:
        return
    project_id = Team.objects.filter(id=team_id).values_list("project_id", flat=True).first()
    indexes = dict(GroupTypeMapping.objects.filter(project_id=project_id).values_list("group_type", "group_type_index"))
    created = []
    for name in dict.fromkeys(named):
        if name in indexes:
            continue
        free = sorted(set(range(MAX_GROUP_TYPES_PER_PROJECT)) - set(indexes.values()))
        if not free:
            continue  # a sixth type is dropped
        indexes[name] = free[0]
        created.append(GroupTypeMapping(team_id=team_id, project_id=project_id, group_type=name, group_type_index=free[0]))
    if created:
        GroupTypeMapping.objects.bulk_create(created)
    _identify_groups(team_id, [event for event in events if event.event == GROUP_IDENTIFY], indexes)


def _identify_groups(team_id: int, events: list, indexes: dict[str, int]) -> None:
    updates: dict[tuple[int, str], tuple[dict, object]] = {}  # (index, key) -> (properties set, first seen)
    for event in sorted(events, key=lambda e: e.timestamp):
        group_type, key = event.properties.get("$group_type"), event.properties.get("$group_key")
        if group_type in (None, "") or key in (None, "") or str(group_type) not in indexes:
            continue
        key = str(key)[:MAX_GROUP_KEY_LENGTH]
        group_set = event.properties.get("$group_set")
        properties, first_seen = updates.get((indexes[str(group_type)], key), ({}, event.timestamp))
        if isinstance(group_set, dict):
            properties = {**properties, **group_set}
        updates[(indexes[str(group_type)], key)] = (properties, first_seen)
    if not updates:
        return
    keys_by_index: dict[int, list[str]] = {}
    for index, key in updates:
        keys_by_index.setdefault(index, []).append(key)
    existing = {}
    for index, keys in keys_by_index.items():
        for group in Group.objects.filter(team_id=team_id, group_type_index=index, group_key__in=keys):
            existing[(index, group.group_key)] = group
    changed, new = [], []
    for (index, key), (properties, first_seen) in updates.items():
        group = existing.get((index, key))
        if group is None:
            new.append(Group(team_id=team_id, group_type_index=index, group_key=key, group_properties=properties, created_at=first_seen))
        elif properties and {**group.group_properties, **properties} != group.group_properties:
            group.group_properties = {**group.group_properties, **properties}
            group.version += 1
            changed.append(group)
    if new:
        Group.objects.bulk_create(new)
    if changed:
        Group.objects.bulk_update(changed, ["group_properties", "version"])
    if clickhouse_enabled():
        # After the Django writes (they may still fail): queries on ClickHouse join the mirror.
        from events.clickhouse.mirror import mirror_groups

        mirror_groups(new + changed)
