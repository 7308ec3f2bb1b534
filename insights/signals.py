"""Hooks that apps standing above insights (alerts) plug into, so insights never imports them."""
from collections.abc import Callable

from django.dispatch import Signal

# Sent with `insight=` inside the update's transaction.
insight_soft_deleted = Signal()
insight_query_changed = Signal()

# {insight id: [serialized alert, ...]} for a page of insight ids; set by the alerts app.
alerts_provider: Callable[[list[int]], dict[int, list[dict]]] | None = None


def alerts_for(insight_ids: list[int]) -> dict[int, list[dict]]:
    return alerts_provider(insight_ids) if alerts_provider else {}
