"""Writing activity log entries and describing what changed."""
import copy

from django.db import models

from .models import ActivityLog

# Never reported as changes, for every scope.
COMMON_EXCLUSIONS = frozenset(
    {"id", "uuid", "short_id", "created_at", "created_by", "last_modified_at", "last_modified_by", "updated_at", "updated_by", "team"}
)


def snapshot(instance: models.Model, exclude: frozenset[str] = frozenset()) -> dict:
    """The diffable state of a model instance: its concrete fields (FKs as ids), minus exclusions."""
    state = {}
    for field in instance._meta.concrete_fields:
        if field.name in COMMON_EXCLUSIONS or field.name in exclude:
            continue
        state[field.name] = copy.deepcopy(getattr(instance, field.attname))
    return state


def changes_between(scope: str, before: dict | None, after: dict) -> list[dict]:
    """Field-level changes between two snapshots, in the order of the `after` snapshot."""
    if before is None:
        return []
    changes = []
    for field, right in after.items():
        left = before.get(field)
        if left is None and right is not None:
            changes.append(change(scope, "created", field, None, right))
        elif right is None and left is not None:
            changes.append(change(scope, "deleted", field, left, None))
        elif left != right:
            changes.append(change(scope, "changed", field, left, right))
    return changes


def change(scope: str, action: str, field: str, before, after) -> dict:
    return {"type": scope, "action": action, "field": field, "before": before, "after": after}


def log_activity(*, team, user, scope: str, item_id, activity: str, name: str | None, short_id: str | None = None, changes: list[dict] | None = None) -> ActivityLog | None:
    """Record one entry. An `updated` entry without changes is not worth recording and is skipped.

    Call it inside the transaction of the change it describes, so both commit or neither does.
    """
    if activity == "updated" and not changes:
        return None
    detail = {"id": None, "changes": changes, "merge": None, "trigger": None, "name": name, "short_id": short_id, "type": None}
    return ActivityLog.objects.create(
        team=team,
        organization_id=team.organization_id,
        user=user if user is not None and user.is_authenticated else None,
        scope=scope,
        item_id=str(item_id),
        activity=activity,
        detail=detail,
    )
