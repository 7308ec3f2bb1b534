"""Read-only API access for viewers of a shared insight (PostHog's sharing authenticators).

`ShareTokenAccess` is installed as `insights.signals.shared_access` when the app is ready: the
insights viewset then puts SHARING_AUTHENTICATION_CLASSES first, uses SharingTokenPermission for
sharing requests (list and retrieve only), restricts its queryset to `shared_insight_ids(request)`,
ignores dashboard context and overrides for share viewers, and passes their refresh mode through
`shared_execution_mode`.

A sharing request is anonymous (`request.user` is AnonymousUser) and `request.auth` is the
SharingConfiguration, so personal-API-key scopes and throttles do not apply to it.
"""
from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions

from insights.signals import SharedInsightAccess
from queries.api import ExecutionMode

from .models import SharingConfiguration
from . import selectors
from .selectors import live_configuration, password_for_share_token

INVALID_TOKEN = "Sharing access token is invalid."


def _allows_public_sharing(configuration: SharingConfiguration) -> bool:
    return configuration.team.organization.allow_publicly_shared_resources


class SharingAccessTokenAuthentication(authentication.BaseAuthentication):
    """`?sharing_access_token=<token>` of an enabled share without password protection; GET/HEAD only."""

    def authenticate(self, request):
        token = request.query_params.get("sharing_access_token")
        if not token:
            return None
        if request.method not in ("GET", "HEAD"):
            raise exceptions.AuthenticationFailed("Sharing access token can only be used for GET requests.")
        configuration = live_configuration(token)
        if configuration is None:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        if configuration.password_required:
            return None  # the public page asks for the password; the plain token is not enough
        if not _allows_public_sharing(configuration):
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        return AnonymousUser(), configuration


def bearer_token(request) -> str | None:
    parts = request.META.get("HTTP_AUTHORIZATION", "").split(None, 1)
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1].strip() or None
    return None


class SharingPasswordProtectedAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <share token>` issued by a password-protected share's page; GET only.

    Anything that is not a valid share token is left to the next authenticator (personal API keys
    use the same header).
    """

    def authenticate(self, request):
        if request.method != "GET":
            return None
        token = bearer_token(request)
        password = password_for_share_token(token) if token else None
        if password is None:
            return None
        configuration = password.sharing_configuration
        if not _allows_public_sharing(configuration):
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        return AnonymousUser(), configuration


SHARING_AUTHENTICATION_CLASSES = (SharingPasswordProtectedAuthentication, SharingAccessTokenAuthentication)


def sharing_configuration_of(request) -> SharingConfiguration | None:
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, SharingConfiguration) else None


def is_sharing_request(request) -> bool:
    return sharing_configuration_of(request) is not None


def shared_insight_ids(request) -> set[int] | None:
    """The insights a sharing request may see, or None when the request is not a sharing one."""
    configuration = sharing_configuration_of(request)
    if configuration is None:
        return None
    ids = getattr(request, "_shared_insight_ids", None)
    if ids is None:  # read once per request
        ids = request._shared_insight_ids = selectors.shared_insight_ids(configuration)
    return ids


class SharingTokenPermission(permissions.BasePermission):
    """A sharing request may only read (`sharing_enabled_actions`) its own share, through its team."""

    def has_permission(self, request, view):
        configuration = sharing_configuration_of(request)
        if configuration is None or view.action not in getattr(view, "sharing_enabled_actions", ()):
            return False
        return configuration.team_id == view.team.id  # an unknown URL team raises the usual 404

    def has_object_permission(self, request, view, obj):
        configuration = sharing_configuration_of(request)
        return configuration is not None and obj.pk in shared_insight_ids(request)


# Execution modes a shared viewer may ask for: never force a recomputation, and never wait for
# one the viewer did not explicitly ask to wait for.
_SHARED_EXECUTION_MODES = {
    ExecutionMode.FORCE_CACHE: ExecutionMode.LAZY_ASYNC,
    ExecutionMode.ASYNC: ExecutionMode.ASYNC,
    ExecutionMode.BLOCKING: ExecutionMode.BLOCKING,
    ExecutionMode.FORCE_BLOCKING: ExecutionMode.BLOCKING,
}


def shared_execution_mode(mode: ExecutionMode) -> ExecutionMode:
    return _SHARED_EXECUTION_MODES.get(mode, ExecutionMode.LAZY_ASYNC)


class ShareTokenAccess(SharedInsightAccess):
    """Share tokens as the insights viewset's shared access (see insights.signals)."""

    authentication_classes = SHARING_AUTHENTICATION_CLASSES

    def is_sharing_request(self, request) -> bool:
        return is_sharing_request(request)

    def permission(self):
        return SharingTokenPermission()

    def insight_ids(self, request) -> set[int] | None:
        return shared_insight_ids(request)

    def execution_mode(self, mode):
        return shared_execution_mode(mode)
