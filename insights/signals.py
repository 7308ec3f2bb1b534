"""Hooks that apps standing above insights (alerts, sharing) plug into, so insights never imports them."""
from collections.abc import Callable

from django.dispatch import Signal

# Sent with `insight=` inside the update's transaction.
insight_soft_deleted = Signal()
insight_query_changed = Signal()

# {insight id: [serialized alert, ...]} for a page of insight ids; set by the alerts app.
alerts_provider: Callable[[list[int]], dict[int, list[dict]]] | None = None


def alerts_for(insight_ids: list[int]) -> dict[int, list[dict]]:
    return alerts_provider(insight_ids) if alerts_provider else {}


class SharedInsightAccess:
    """Read access to insights for viewers of a share (a share token instead of a user).

    The sharing app stands above insights and installs its implementation as `shared_access`;
    this default grants nothing. A share viewer may only list and retrieve.
    """

    # Authenticators tried before the usual ones: a share token must never be read as a personal key.
    authentication_classes: tuple = ()

    def is_sharing_request(self, request) -> bool:
        return False

    def permission(self):
        """The permission that replaces scopes and team membership for a sharing request."""
        raise NotImplementedError

    def insight_ids(self, request) -> set[int] | None:
        """The insights a sharing request may see, or None when the request is not a sharing one."""
        return None

    def execution_mode(self, mode):
        """The execution mode (queries.ExecutionMode) a share viewer gets when asking for `mode`."""
        return mode


shared_access = SharedInsightAccess()
