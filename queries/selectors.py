"""Reads of stored events for callers outside the engine, so that no product app queries them itself."""
from typing import Optional

from events import store


def recent_event_properties(team_id: int, *, event: Optional[str] = None, limit: int) -> list:
    """The `properties` of the team's `limit` most recent events (of `event` when given), newest first
    (from the configured event store: the Django database or ClickHouse)."""
    return store.recent_event_properties(team_id, event=event, limit=limit)
