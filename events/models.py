"""The events store: events as captured, and the persons their distinct ids resolve to."""
import uuid

from django.db import models
from django.utils import timezone

from accounts.models import Team


class Person(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)  # (team, created_at) serves it
    # The timestamp of the person's earliest event (not the ingestion time), as in PostHog.
    created_at = models.DateTimeField(default=timezone.now)
    properties = models.JSONField(default=dict, blank=True)
    is_identified = models.BooleanField(default=False)
    version = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["team", "created_at"], name="person_team_created")]


class PersonDistinctId(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)  # rarely looked up alone
    person = models.ForeignKey(Person, on_delete=models.CASCADE, related_name="distinct_ids")
    distinct_id = models.CharField(max_length=400)
    version = models.BigIntegerField(default=0)

    class Meta:
        # distinct_id leads: lookups of a batch's ids probe the index whatever the planner believes
        # about the team's size (a team-leading index invites whole-team scans on stale statistics).
        constraints = [models.UniqueConstraint(fields=["distinct_id", "team"], name="unique_distinct_id_team")]


class Event(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)  # leads the indexes below
    event = models.CharField(max_length=400)
    distinct_id = models.CharField(max_length=400)
    properties = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField()
    # Person resolved at ingestion (PostHog's persons-on-events); re-pointed on merges.
    person = models.ForeignKey(Person, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    session_id = models.CharField(max_length=200, blank=True, default="", db_column="session_id")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["team", "event", "timestamp"], name="event_team_event_ts"),
            models.Index(fields=["team", "timestamp"], name="event_team_ts"),
            models.Index(fields=["team", "person", "timestamp"], name="event_team_person_ts"),
            # Personless events of a distinct id join its person once one is created (tiny: personless only).
            models.Index(
                fields=["team", "distinct_id"], condition=models.Q(person__isnull=True), name="event_team_personless_did"
            ),
        ]
        constraints = [models.UniqueConstraint(fields=["uuid", "team"], name="unique_event_uuid_team")]


class PersonlessDistinctId(models.Model):
    """Distinct ids that sent personless events (`$process_person_profile: false`) before any
    person had them (PostHog's `posthog_personlessdistinctid`). Only the ClickHouse store keeps
    them: when such an id gets a person, its earlier events are pointed at it by an override
    instead of being rewritten. `is_merged`: that override was written."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+", db_index=False)
    distinct_id = models.CharField(max_length=400)
    is_merged = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["distinct_id", "team"], name="unique_personless_distinct_id_team")]
