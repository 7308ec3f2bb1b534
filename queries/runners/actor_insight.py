"""Freshness rules and date-range errors shared by the retention, lifecycle, stickiness and paths runners."""
from contextlib import contextmanager
from datetime import datetime
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

    def covered_range(self) -> Optional[tuple[datetime, datetime, str]]:
        return self.range_start(), self.range_end(), self.interval_name
