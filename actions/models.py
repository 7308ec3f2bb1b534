"""Actions: named definitions of "an event that matters" (an OR of steps) that insights count.

The steps are stored as JSON, as PostHog does since it dropped its ActionStep table; the query
engine compiles them to one SQL condition (`queries/sql/actions.py`).
"""
from django.conf import settings
from django.db import models
from django.utils import timezone

from accounts.models import Team

MATCHING_OPTIONS = ("contains", "regex", "exact")
STEP_KEYS = ("event", "properties", "selector", "tag_name", "text", "text_matching", "href", "href_matching", "url", "url_matching")


class Action(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=400, null=True, blank=True)
    description = models.TextField(blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)
    deleted = models.BooleanField(default=False)
    steps_json = models.JSONField(null=True, blank=True, default=list)
    post_to_slack = models.BooleanField(default=False)
    slack_message_format = models.CharField(max_length=1200, blank=True, default="")
    pinned_at = models.DateTimeField(null=True, blank=True)
    # Deprecated in PostHog but still its list order (creation time unless set).
    last_calculated_at = models.DateTimeField(default=timezone.now)
    bytecode_error = models.TextField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["team", "deleted"], name="action_team_deleted")]

    def __str__(self) -> str:
        return self.name or f"Action {self.pk}"

    @property
    def steps(self) -> list[dict]:
        return [step for step in (self.steps_json or []) if isinstance(step, dict)]
