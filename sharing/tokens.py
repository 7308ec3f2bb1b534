"""The share token: a JWT proving that its holder unlocked one password-protected share.

It is no session: it names the share (`access_token`), its team and the password that was used,
and stops working when any of them is gone, disabled or expired.
"""
from datetime import timedelta

import jwt
from django.conf import settings
from django.utils import timezone

AUDIENCE = "posthog:sharing_password_protected"
ALGORITHM = "HS256"
LIFETIME = timedelta(hours=24)
COOKIE_NAME = "posthog_sharing_token"


def encode_share_token(share_password) -> str:
    configuration = share_password.sharing_configuration
    payload = {
        "share_password_id": share_password.id,
        "team_id": configuration.team_id,
        "access_token": configuration.access_token,
        "exp": timezone.now() + LIFETIME,
        "aud": AUDIENCE,
    }
    return jwt.encode(payload, settings.SECRET_KEY, algorithm=ALGORITHM)


def decode_share_token(token: str) -> dict | None:
    """The claims of a valid share token, else None (malformed, forged, expired, other audience)."""
    try:
        claims = jwt.decode(
            token,
            settings.SECRET_KEY,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "aud", "share_password_id", "team_id", "access_token"]},
        )
    except jwt.InvalidTokenError:
        return None
    if not (isinstance(claims["share_password_id"], int) and isinstance(claims["team_id"], int) and isinstance(claims["access_token"], str)):
        return None
    return claims
