"""Writes to actions, with their activity log entries."""
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from activity.services import changes_between, log_activity, snapshot

from .models import Action
from .steps import steps_error

ACTION_SCOPE = "Action"
ACTIVITY_EXCLUSIONS = frozenset({"last_calculated_at", "bytecode_error"})


def _tags(names) -> list[str]:
    return sorted({name.strip().lower() for name in names} - {""})


def _check_unique_name(team, name, exclude_id=None) -> None:
    if not name:
        return
    clash = Action.objects.filter(team=team, name=name, deleted=False).exclude(id=exclude_id).values_list("id", flat=True).first()
    if clash is not None:
        raise serializers.ValidationError({"name": f"This project already has an action with this name, ID {clash}"}, code="unique")


def _apply(action: Action, data: dict) -> None:
    data.pop("_create_in_folder", None)  # folders are not part of this API
    if "tags" in data:
        data["tags"] = _tags(data["tags"])
    if "pinned_at" in data:
        pin = data.pop("pinned_at")
        if not pin:
            action.pinned_at = None
        elif action.pinned_at is None:
            action.pinned_at = timezone.now()
    for field, value in data.items():
        setattr(action, field, value)
    if action.steps_json is None:
        action.steps_json = []
    action.bytecode_error = steps_error(action.steps_json)


@transaction.atomic
def create_action(*, team, user, data: dict) -> Action:
    _check_unique_name(team, data.get("name"))
    action = Action(team=team, created_by=user)
    _apply(action, data)
    action.save()
    log_activity(team=team, user=user, scope=ACTION_SCOPE, item_id=action.id, activity="created", name=action.name)
    return action


@transaction.atomic
def update_action(action: Action, *, team, user, data: dict) -> Action:
    """PATCH/PUT: `steps` replaces the whole list; soft delete and restore are updates of `deleted`."""
    if data.get("name") or (data.get("deleted") is False and action.deleted):
        _check_unique_name(team, data.get("name") or action.name, exclude_id=action.id)
    before = snapshot(action, ACTIVITY_EXCLUSIONS)
    _apply(action, data)
    action.save()
    changes = changes_between(ACTION_SCOPE, before, snapshot(action, ACTIVITY_EXCLUSIONS))
    deleted = next((item for item in changes if item["field"] == "deleted"), None)
    activity = "updated"
    if deleted:
        activity = "deleted" if deleted["after"] else "restored"
    log_activity(team=team, user=user, scope=ACTION_SCOPE, item_id=action.id, activity=activity, name=action.name, changes=changes)
    return action
