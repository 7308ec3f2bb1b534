"""Reads: the share behind a public token or a share token."""
from django.db.models import Q
from django.utils import timezone

from insights.models import DashboardTile

from .models import SharePassword, SharingConfiguration
from .tokens import decode_share_token


def _unexpired() -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())


def _live_target(prefix: str = "") -> Q:
    """The shared insight or dashboard is not deleted."""
    return (Q(**{f"{prefix}insight__isnull": False, f"{prefix}insight__deleted": False})
            | Q(**{f"{prefix}dashboard__isnull": False, f"{prefix}dashboard__deleted": False}))


def live_configuration(access_token: str) -> SharingConfiguration | None:
    """The enabled, unexpired share of a live insight or dashboard with this token.

    The organization's `allow_publicly_shared_resources` is left to the caller: pages answer 404,
    the API an authentication error.
    """
    if not access_token:
        return None
    return (
        SharingConfiguration.objects.select_related("team__organization", "insight__team", "insight__created_by", "insight__last_modified_by",
                                                    "dashboard__team", "dashboard__created_by")
        .filter(_unexpired(), _live_target(), access_token=access_token, enabled=True)
        .first()
    )


def password_for_share_token(token: str) -> SharePassword | None:
    """The active password a valid share token was issued for, with its live, still-protected share."""
    claims = decode_share_token(token)
    if claims is None:
        return None
    unexpired = Q(sharing_configuration__expires_at__isnull=True) | Q(sharing_configuration__expires_at__gt=timezone.now())
    return (
        SharePassword.objects.select_related("sharing_configuration__team__organization", "sharing_configuration__insight",
                                             "sharing_configuration__dashboard")
        .filter(
            unexpired,
            _live_target("sharing_configuration__"),
            id=claims["share_password_id"],
            is_active=True,
            sharing_configuration__team_id=claims["team_id"],
            sharing_configuration__access_token=claims["access_token"],
            sharing_configuration__enabled=True,
            sharing_configuration__password_required=True,
        )
        .first()
    )


def active_passwords(configuration: SharingConfiguration):
    return configuration.share_passwords.filter(is_active=True).select_related("created_by").order_by("created_at", "id")


def shared_insight_ids(configuration: SharingConfiguration) -> set[int]:
    """The insights a share shows: the shared insight, or those on the shared dashboard's live tiles."""
    if configuration.insight_id is not None:
        return {configuration.insight_id}
    return set(DashboardTile.objects.filter(dashboard_id=configuration.dashboard_id, insight__deleted=False)
               .values_list("insight_id", flat=True))
