"""Row caps by what a query is run for (PostHog's LimitContext, spec/vocabulary.md §9.3).

A SQL (HogQL) or events query without a LIMIT of its own returns `default_rows`; any LIMIT is
capped at `max_rows`. The query API and insights answer 100 rows by default and 50,000 at most;
an export holds up to 300,000 rows (PostHog's CSV_EXPORT_LIMIT), by default as many.
"""
from enum import Enum


class LimitContext(str, Enum):
    QUERY = "query"
    """The query API, insights, dashboards and alerts."""
    EXPORT = "export"
    """CSV/XLSX exports."""

    @property
    def default_rows(self) -> int:
        return 300_000 if self is LimitContext.EXPORT else 100

    @property
    def max_rows(self) -> int:
        return 300_000 if self is LimitContext.EXPORT else 50_000
