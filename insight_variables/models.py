"""SQL insight variables: named, typed values that HogQL queries reference as `{variables.<code_name>}`."""
import uuid

from django.conf import settings
from django.db import models

from accounts.models import Team


class InsightVariable(models.Model):
    class Type(models.TextChoices):
        STRING = "String"
        NUMBER = "Number"
        BOOLEAN = "Boolean"
        LIST = "List"
        DATE = "Date"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="insight_variables")
    name = models.CharField(max_length=400)
    # Derived from the name once, on create; renaming keeps it so saved queries still resolve.
    code_name = models.CharField(max_length=400, null=True, blank=True)
    type = models.CharField(max_length=128, choices=Type.choices)
    default_value = models.JSONField(null=True, blank=True)
    values = models.JSONField(null=True, blank=True)
    is_multi = models.BooleanField(default=False)
    values_query = models.TextField(null=True, blank=True)
    values_query_connection_id = models.CharField(max_length=400, null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["team", "code_name"])]

    def __str__(self) -> str:
        return self.name


def code_name_for(name: str) -> str:
    """PostHog's rule: keep letters, digits, spaces and underscores; spaces become `_`; lower case."""
    kept = "".join(char for char in name if char.isalnum() or char in " _")
    return kept.replace(" ", "_").lower()
