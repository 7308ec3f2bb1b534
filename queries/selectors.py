"""Reads of stored events for callers outside the engine, so that no product app queries them itself."""
from typing import Optional

from events.models import Event


def recent_event_properties(team_id: int, *, event: Optional[str] = None, limit: int) -> list:
    """The `properties` of the team's `limit` most recent events (of `event` when given), newest first."""
    rows = Event.objects.filter(team_id=team_id)
    if event is not None:
        rows = rows.filter(event=event)
    return list(rows.order_by("-timestamp").values_list("properties", flat=True)[:limit])
