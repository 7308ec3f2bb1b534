"""Public links to insights and dashboards: one current configuration per insight or dashboard,
optionally password-protected."""
import secrets

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django.utils import timezone

from accounts.models import Team
from insights.models import Dashboard, Insight

# After a token rotation the previous link keeps working this long, so open pages do not break at once.
TOKEN_GRACE_PERIOD_SECONDS = 300


def generate_access_token() -> str:
    return secrets.token_urlsafe(22)


class SharingConfiguration(models.Model):
    """The current configuration of an insight has no `expires_at`; rotated-out ones carry the end
    of their grace period."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    # What is shared: exactly one of an insight or a whole dashboard.
    insight = models.ForeignKey(Insight, on_delete=models.CASCADE, null=True, blank=True, related_name="sharing_configurations")
    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, null=True, blank=True, related_name="sharing_configurations")
    enabled = models.BooleanField(default=False)
    access_token = models.CharField(max_length=400, unique=True, default=generate_access_token)
    settings = models.JSONField(null=True, blank=True)
    password_required = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["insight"], condition=models.Q(expires_at__isnull=True), name="unique_current_sharing_configuration"
            ),
            models.UniqueConstraint(
                fields=["dashboard"], condition=models.Q(expires_at__isnull=True), name="unique_current_dashboard_sharing_configuration"
            ),
            models.CheckConstraint(
                condition=models.Q(insight__isnull=False, dashboard__isnull=True) | models.Q(insight__isnull=True, dashboard__isnull=False),
                name="sharing_configuration_exactly_one_target",
            ),
        ]

    @property
    def target(self):
        """The shared insight or dashboard."""
        return self.insight if self.insight_id is not None else self.dashboard

    def __str__(self):
        return f"Sharing of insight {self.insight_id}" if self.insight_id else f"Sharing of dashboard {self.dashboard_id}"


class SharePassword(models.Model):
    """Only the hash (Django's password hashers) is stored; the raw password is shown once."""

    sharing_configuration = models.ForeignKey(SharingConfiguration, on_delete=models.CASCADE, related_name="share_passwords")
    password_hash = models.CharField(max_length=128)
    note = models.CharField(max_length=100, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    is_active = models.BooleanField(default=True)

    def set_password(self, raw_password: str) -> None:
        self.password_hash = make_password(raw_password)

    def check_password(self, raw_password: str) -> bool:
        def upgrade(raw):  # re-hash when the configured hasher or its work factor changed
            self.set_password(raw)
            self.save(update_fields=["password_hash"])

        return check_password(raw_password, self.password_hash, setter=upgrade)
