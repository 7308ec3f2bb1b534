"""Freshness rules shared by the retention, lifecycle, stickiness and paths runners."""
import math
from datetime import datetime, timedelta
from typing import Optional

from .base import QueryRunner


class ActorInsightRunner(QueryRunner):
    """A runner whose results cover [range_start(), range_end()] at interval `interval_name`."""

    interval_name: str = "day"

    def range_start(self) -> datetime:
        raise NotImplementedError

    def range_end(self) -> datetime:
        raise NotImplementedError

    def staleness_interval(self) -> Optional[str]:
        return self.interval_name

    def staleness_date_to(self) -> Optional[datetime]:
        return self.range_end()

    def refresh_frequency(self) -> timedelta:
        """3 minutes for hourly or short (<= 7 days) ranges, else 15 (PostHog's insight runners)."""
        days = math.ceil((self.range_end() - self.range_start()).total_seconds() / 86400)
        if self.interval_name == "hour" or days <= 7:
            return timedelta(minutes=3)
        return timedelta(minutes=15)
