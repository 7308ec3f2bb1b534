"""Writes of shares, with their activity-log entries."""
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from activity.services import change, log_activity
from insights.models import InsightViewed

from .models import TOKEN_GRACE_PERIOD_SECONDS, SharePassword, SharingConfiguration

SCOPE = "Insight"


def current_configuration(insight, *, lock: bool = False) -> SharingConfiguration:
    """The insight's current configuration, stored on first use so its token stays the same.

    Concurrent first uses are safe: the partial unique constraint lets one insert win and the
    others read it (get_or_create retries the read on IntegrityError).
    """
    queryset = SharingConfiguration.objects.select_for_update() if lock else SharingConfiguration.objects
    configuration, _ = queryset.get_or_create(insight=insight, expires_at=None, defaults={"team_id": insight.team_id})
    return configuration


def _insight_name(insight) -> str | None:
    return insight.name or insight.derived_name or None


def update_configuration(insight, user, changes: dict) -> SharingConfiguration:
    """Apply validated `enabled`, `settings` and `password_required` changes."""
    if changes.get("enabled") and not insight.team.organization.allow_publicly_shared_resources:
        raise PermissionDenied("Public sharing is disabled for this organization.")
    with transaction.atomic():
        configuration = current_configuration(insight, lock=True)
        for field, value in changes.items():
            setattr(configuration, field, value)
        configuration.save()
        if not configuration.enabled:
            # Turning sharing off also ends the grace period of rotated-out links.
            now = timezone.now()
            SharingConfiguration.objects.filter(insight=insight, expires_at__gt=now).update(expires_at=now)
        log_activity(
            team=insight.team,
            user=user,
            scope=SCOPE,
            item_id=insight.id,
            activity="sharing enabled" if configuration.enabled else "sharing disabled",
            name=_insight_name(insight),
            short_id=insight.short_id,
            changes=[change(SCOPE, "changed", "sharing", None, configuration.enabled)],
        )
    return configuration


def rotate_access_token(insight, user) -> SharingConfiguration:
    """A new current configuration with a fresh token, the same options and the same passwords;
    the previous one keeps working for the grace period."""
    with transaction.atomic():
        previous = current_configuration(insight, lock=True)
        previous.expires_at = timezone.now() + timedelta(seconds=TOKEN_GRACE_PERIOD_SECONDS)
        previous.save(update_fields=["expires_at"])
        configuration = SharingConfiguration.objects.create(
            team_id=previous.team_id,
            insight=insight,
            enabled=previous.enabled,
            settings=previous.settings,
            password_required=previous.password_required,
        )
        SharePassword.objects.bulk_create(
            SharePassword(
                sharing_configuration=configuration,
                password_hash=password.password_hash,
                note=password.note,
                created_by_id=password.created_by_id,
                created_at=password.created_at,
            )
            for password in previous.share_passwords.filter(is_active=True)
        )
        log_activity(
            team=insight.team,
            user=user,
            scope=SCOPE,
            item_id=insight.id,
            activity="access token refreshed",
            name=_insight_name(insight),
            short_id=insight.short_id,
        )
    return configuration


def create_password(configuration: SharingConfiguration, user, raw_password: str | None, note: str) -> tuple[SharePassword, str]:
    """Returns the stored password and the raw value, which is never stored nor shown again."""
    raw_password = raw_password or secrets.token_urlsafe(16)
    password = SharePassword(sharing_configuration=configuration, note=note, created_by=user)
    password.set_password(raw_password)
    password.save()
    return password, raw_password


def deactivate_password(configuration: SharingConfiguration, password_id: str) -> bool:
    if not (password_id.isascii() and password_id.isdigit() and len(password_id) <= 18):  # fits a bigint
        return False
    return bool(configuration.share_passwords.filter(id=password_id, is_active=True).update(is_active=False))


def record_login_attempt(configuration: SharingConfiguration, client_ip: str, password: SharePassword | None) -> None:
    insight = configuration.insight
    attempt = {
        "access_token_suffix": configuration.access_token[-6:],
        "client_ip": client_ip or "unknown",
        "success": password is not None,
        "resource_type": "insight",
    }
    if password is not None:
        attempt |= {"password_id": str(password.id), "password_note": password.note or "Untitled password"}
    log_activity(
        team=configuration.team,
        user=None,
        scope=SCOPE,
        item_id=insight.id,
        activity="share_login_success" if password is not None else "share_login_failed",
        name=insight.name,
        changes=[change(SCOPE, "changed", "authentication_attempt", None, attempt)],
    )


def record_anonymous_view(insight) -> None:
    """Public views share one row per insight, without team or user."""
    InsightViewed.objects.update_or_create(insight=insight, team=None, user=None, defaults={"last_viewed_at": timezone.now()})
