"""The activity log: who did what to which item, with field-level changes."""
import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from accounts.models import Team


class ActivityLog(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    organization_id = models.UUIDField(null=True, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    was_impersonated = models.BooleanField(default=False)
    is_system = models.BooleanField(default=False)
    activity = models.CharField(max_length=79)
    scope = models.CharField(max_length=79)
    item_id = models.CharField(max_length=72, null=True, blank=True)
    # {id, changes, merge, trigger, name, short_id, type}
    detail = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["team", "scope", "item_id", "created_at"], name="activity_team_scope_item"),
            models.Index(fields=["team", "scope", "created_at"], name="activity_team_scope_time"),
        ]
