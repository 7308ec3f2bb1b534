"""Freshness rules and date-range errors shared by the retention, lifecycle, stickiness and paths runners."""
import math
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Optional

from rest_framework.exceptions import ValidationError

from .base import QueryRunner


@contextmanager
def date_range_errors():
    """Relative dates pushed past year 1 or 9999 (`-10000000d`) are a client error, not a crash."""
    try:
        yield
    except OverflowError as error:
        raise ValidationError(f"The date range is out of bounds: {error}.") from None
    except ValueError as error:
        if "out of range" not in str(error):
            raise
        raise ValidationError(f"The date range is out of bounds: {error}.") from None


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
