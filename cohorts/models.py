"""Cohorts: sets of persons, either listed (static) or defined by filters (dynamic) and computed
into `CohortPeople` rows by the query engine (queries/sql/cohorts.py)."""
from django.conf import settings
from django.db import models

from accounts.models import Team


class Cohort(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=400, null=True, blank=True)
    description = models.CharField(max_length=1000, blank=True, default="")
    deleted = models.BooleanField(default=False)
    filters = models.JSONField(null=True, blank=True)
    query = models.JSONField(null=True, blank=True)
    groups = models.JSONField(default=list, blank=True)  # PostHog's legacy format, read-only here
    is_static = models.BooleanField(default=False)
    cohort_type = models.CharField(max_length=20, null=True, blank=True)
    # Membership generation: rows of `version` are the members; a calculation writes
    # `pending_version` and then moves `version` to it.
    version = models.IntegerField(null=True, blank=True)
    pending_version = models.IntegerField(null=True, blank=True)
    count = models.IntegerField(null=True, blank=True)
    is_calculating = models.BooleanField(default=False)
    calculation_started_at = models.DateTimeField(null=True, blank=True)
    last_calculation = models.DateTimeField(null=True, blank=True)
    errors_calculating = models.IntegerField(default=0)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["team", "deleted", "created_at"], name="cohort_team_live_created")]

    def __str__(self):
        return self.name or f"Cohort {self.id}"


class CohortPeople(models.Model):
    """One member of one generation (`version`) of a cohort."""

    cohort = models.ForeignKey(Cohort, on_delete=models.CASCADE, related_name="+", db_index=False)  # leads the index below
    person = models.ForeignKey("events.Person", on_delete=models.CASCADE, related_name="+")
    version = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cohort", "version", "person"], name="unique_cohort_version_person")]
