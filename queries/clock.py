"""The engine's notion of "now" and of the team's timezone (one place, so tests can pin time)."""
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone


def now() -> datetime:
    return timezone.now()


def team_timezone(team) -> ZoneInfo:
    try:
        return ZoneInfo(team.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def week_start_day(team) -> int:
    """0 = Sunday (PostHog's default), 1 = Monday; teams without the setting start on Sunday."""
    return 1 if getattr(team, "week_start_day", None) == 1 else 0
