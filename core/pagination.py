from rest_framework import pagination


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """PostHog's list pagination: `limit` (default 100) and `offset`, envelope {count, next, previous, results}."""

    default_limit = 100
    max_limit = 1000
