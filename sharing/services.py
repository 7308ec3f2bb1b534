"""Writes of shares, with their activity-log entries."""
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied

from activity.services import change, log_activity
from insights.models import Dashboard, InsightViewed

from .models import TOKEN_GRACE_PERIOD_SECONDS, SharePassword, SharingConfiguration

SCOPE = "Insight"
DASHBOARD_SCOPE = "Dashboard"


def _target(target) -> dict:
    """The configuration's field naming what is shared: an insight or a dashboard."""
    return {"dashboard": target} if isinstance(target, Dashboard) else {"insight": target}


def _log(target, user, activity: str, changes=None, *, team=None) -> None:
    """One activity entry on the shared insight or dashboard."""
    is_dashboard = isinstance(target, Dashboard)
    log_activity(
        team=team or target.team,
        user=user,
        scope=DASHBOARD_SCOPE if is_dashboard else SCOPE,
        item_id=target.id,
        activity=activity,
        name=target.name if is_dashboard else _insight_name(target),
        short_id=None if is_dashboard else target.short_id,
        changes=changes,
    )


def current_configuration(target, *, lock: bool = False) -> SharingConfiguration:
    """The insight's (or dashboard's) current configuration, stored on first use so its token stays the same.

    Concurrent first uses are safe: the partial unique constraint lets one insert win and the
    others read it (get_or_create retries the read on IntegrityError).
    """
    queryset = SharingConfiguration.objects.select_for_update() if lock else SharingConfiguration.objects
    configuration, _ = queryset.get_or_create(**_target(target), expires_at=None, defaults={"team_id": target.team_id})
    return configuration


def _insight_name(insight) -> str | None:
    return insight.name or insight.derived_name or None


def update_configuration(target, user, changes: dict) -> SharingConfiguration:
    """Apply validated `enabled`, `settings` and `password_required` changes."""
    if changes.get("enabled") and not target.team.organization.allow_publicly_shared_resources:
        raise PermissionDenied("Public sharing is disabled for this organization.")
    with transaction.atomic():
        configuration = current_configuration(target, lock=True)
        for field, value in changes.items():
            setattr(configuration, field, value)
        configuration.save()
        if not configuration.enabled:
            # Turning sharing off also ends the grace period of rotated-out links.
            now = timezone.now()
            SharingConfiguration.objects.filter(**_target(target), expires_at__gt=now).update(expires_at=now)
        scope = DASHBOARD_SCOPE if isinstance(target, Dashboard) else SCOPE
        _log(target, user, "sharing enabled" if configuration.enabled else "sharing disabled",
             [change(scope, "changed", "sharing", None, configuration.enabled)])
    return configuration


def rotate_access_token(target, user) -> SharingConfiguration:
    """A new current configuration with a fresh token, the same options and the same passwords;
    the previous one keeps working for the grace period."""
    with transaction.atomic():
        previous = current_configuration(target, lock=True)
        previous.expires_at = timezone.now() + timedelta(seconds=TOKEN_GRACE_PERIOD_SECONDS)
        previous.save(update_fields=["expires_at"])
        configuration = SharingConfiguration.objects.create(
            team_id=previous.team_id,
            **_target(target),
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
        _log(target, user, "access token refreshed")
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
    target = configuration.target
    is_dashboard = isinstance(target, Dashboard)
    attempt = {
        "access_token_suffix": configuration.access_token[-6:],
        "client_ip": client_ip or "unknown",
        "success": password is not None,
        "resource_type": "dashboard" if is_dashboard else "insight",
    }
    if password is not None:
        attempt |= {"password_id": str(password.id), "password_note": password.note or "Untitled password"}
    scope = DASHBOARD_SCOPE if is_dashboard else SCOPE
    log_activity(
        team=configuration.team,
        user=None,
        scope=scope,
        item_id=target.id,
        activity="share_login_success" if password is not None else "share_login_failed",
        name=target.name,
        changes=[change(scope, "changed", "authentication_attempt", None, attempt)],
    )


def record_anonymous_view(insight) -> None:
    """Public views share one row per insight, without team or user."""
    InsightViewed.objects.update_or_create(insight=insight, team=None, user=None, defaults={"last_viewed_at": timezone.now()})
