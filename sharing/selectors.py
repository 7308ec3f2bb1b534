"""Reads: the share behind a public token or a share token."""
from django.db.models import Q
from django.utils import timezone

from .models import SharePassword, SharingConfiguration
from .tokens import decode_share_token


def _unexpired() -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())


def live_configuration(access_token: str) -> SharingConfiguration | None:
    """The enabled, unexpired share of a live insight with this token.

    The organization's `allow_publicly_shared_resources` is left to the caller: pages answer 404,
    the API an authentication error.
    """
    if not access_token:
        return None
    return (
        SharingConfiguration.objects.select_related("team__organization", "insight__team", "insight__created_by", "insight__last_modified_by")
        .filter(_unexpired(), access_token=access_token, enabled=True, insight__deleted=False)
        .first()
    )


def password_for_share_token(token: str) -> SharePassword | None:
    """The active password a valid share token was issued for, with its live, still-protected share."""
    claims = decode_share_token(token)
    if claims is None:
        return None
    unexpired = Q(sharing_configuration__expires_at__isnull=True) | Q(sharing_configuration__expires_at__gt=timezone.now())
    return (
        SharePassword.objects.select_related("sharing_configuration__team__organization", "sharing_configuration__insight")
        .filter(
            unexpired,
            id=claims["share_password_id"],
            is_active=True,
            sharing_configuration__team_id=claims["team_id"],
            sharing_configuration__access_token=claims["access_token"],
            sharing_configuration__enabled=True,
            sharing_configuration__password_required=True,
            sharing_configuration__insight__deleted=False,
        )
        .first()
    )


def active_passwords(configuration: SharingConfiguration):
    return configuration.share_passwords.filter(is_active=True).select_related("created_by").order_by("created_at", "id")
