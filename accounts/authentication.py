"""Personal API key authentication (PostHog's `phx_` keys)."""
import json
from datetime import timedelta

from django.http.request import RawPostDataException

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import PersonalAPIKey, hash_key_value


def find_personal_api_key(request) -> tuple[str, str] | None:
    """(raw key, where it was found); the Authorization header wins, then the body, then the query."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        parts = header.split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "bearer":
            token = parts[1].strip()
            if token and not token.startswith("pha_"):  # pha_ = OAuth access tokens
                return token, "Authorization header"
    data = _json_body(request)
    if isinstance(data, dict) and isinstance(data.get("personal_api_key"), str):
        return data["personal_api_key"], "body"
    value = request.query_params.get("personal_api_key") if hasattr(request, "query_params") else None
    if value:
        return value, "query string"
    return None


def _json_body(request):
    """The JSON body, read without disturbing DRF's own parsing (which reports bad JSON itself)."""
    django_request = getattr(request, "_request", request)
    if "json" not in django_request.META.get("CONTENT_TYPE", ""):
        return None
    try:
        return json.loads(django_request.body or b"null")
    except (ValueError, UnicodeDecodeError, RawPostDataException):
        return None


class PersonalAPIKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        found = find_personal_api_key(request)
        if found is None:
            return None
        raw, source = found
        key = (
            PersonalAPIKey.objects.select_related("user")
            .filter(secure_value=hash_key_value(raw), user__is_active=True)
            .first()
        )
        if key is None:
            raise exceptions.AuthenticationFailed(f"Personal API key found in request {source} is invalid.")
        now = timezone.now()
        interval = timedelta(seconds=settings.PERSONAL_API_KEY_LAST_USED_INTERVAL_SECONDS)
        if key.last_used_at is None or key.last_used_at < now - interval:
            PersonalAPIKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
        return key.user, key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


def is_personal_api_key_request(request) -> bool:
    return isinstance(getattr(request, "auth", None), PersonalAPIKey)
