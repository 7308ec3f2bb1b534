"""Writes of group types and groups."""
import uuid

from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from events.clickhouse import is_enabled as clickhouse_enabled
from events.services import ingest_batch

from .models import Group, GroupTypeMapping
from .selectors import project_group_types


def update_group_type_metadata(*, team, items: list[dict]) -> None:
    by_index = {mapping.group_type_index: mapping for mapping in project_group_types(team)}
    changed = []
    for item in items:
        mapping = by_index.get(item["group_type_index"])
        if mapping is None:
            continue
        for field in ("name_singular", "name_plural"):
            if field in item:
                setattr(mapping, field, item[field])
        changed.append(mapping)
    if changed:
        GroupTypeMapping.objects.bulk_update(changed, ["name_singular", "name_plural"])


def delete_group_type(*, team, group_type_index: int) -> bool:
    """Forget the type and its groups (events keep their `$groups`)."""
    deleted, _ = project_group_types(team).filter(group_type_index=group_type_index).delete()
    if deleted:
        groups = Group.objects.filter(team__project_id=team.project_id, group_type_index=group_type_index)
        if clickhouse_enabled():
            from events.clickhouse.mirror import mirror_groups

            mirror_groups(list(groups), deleted=True)
        groups.delete()
    return bool(deleted)


def create_group(*, team, group_type_index: int, group_key: str, group_properties: dict) -> Group:
    """A group of an existing type; like PostHog, also records the `$groupidentify` event."""
    mapping = project_group_types(team).filter(group_type_index=group_type_index).first()
    if mapping is None:
        raise ValidationError({"group_type_index": ["Group type does not exist."]})
    with transaction.atomic():
        if Group.objects.filter(team=team, group_type_index=group_type_index, group_key=group_key).exists():
            raise ValidationError("A group with this key already exists")
        group = Group.objects.create(team=team, group_type_index=group_type_index, group_key=group_key,
                                     group_properties=group_properties, created_at=timezone.now())
        if clickhouse_enabled():
            from events.clickhouse.mirror import mirror_groups

            mirror_groups([group])
    ingest_batch(team, [{
        "event": "$groupidentify",
        "distinct_id": str(team.uuid),
        "uuid": str(uuid.uuid4()),
        "properties": {"$group_type": mapping.group_type, "$group_key": group_key, "$group_set": group_properties,
                       "$process_person_profile": False},
    }])
    return group
