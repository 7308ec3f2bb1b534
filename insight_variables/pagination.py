from rest_framework.pagination import PageNumberPagination


class InsightVariablePagination(PageNumberPagination):
    """PostHog pages insight variables by page number, 500 to a page."""

    page_size = 500
