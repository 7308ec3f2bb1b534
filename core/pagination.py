from rest_framework import pagination
from rest_framework.utils.urls import remove_query_param, replace_query_param


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """PostHog's list pagination: `limit` (default 100) and `offset`, envelope {count, next, previous, results}."""

    default_limit = 100
    max_limit = 1000


class OffsetWindow:
    """`limit`/`offset` of an action that pages by hand (a list that is not a queryset page), bounded:
    a missing, malformed or negative value takes the default, `limit` is 1..max_limit and `offset`
    stays far enough below 2**63 that `offset + limit` fits the databases' 64-bit integers."""

    MAX_OFFSET = 2**62

    def __init__(self, request, *, default_limit: int, max_limit: int):
        self.request = request
        self.limit = min(_non_negative(request.query_params.get("limit"), default_limit) or 1, max_limit)
        self.offset = min(_non_negative(request.query_params.get("offset"), 0), self.MAX_OFFSET)

    def slice(self, rows):
        return rows[self.offset:self.offset + self.limit]

    def next_url(self, page_is_full: bool):
        """The next page's URL when this page is full (there may be more)."""
        if not page_is_full:
            return None
        return self._url(self.offset + self.limit)

    def previous_url(self):
        if self.offset <= 0:
            return None
        url = self._url(max(self.offset - self.limit, 0))
        return remove_query_param(url, "offset") if self.offset - self.limit <= 0 else url

    def _url(self, offset: int) -> str:
        return replace_query_param(replace_query_param(self.request.build_absolute_uri(), "offset", offset), "limit", self.limit)


def _non_negative(value, default: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return default
    return number if number >= 0 else default
