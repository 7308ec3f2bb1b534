from rest_framework.pagination import CursorPagination


class GroupCursorPagination(CursorPagination):
    """Newest groups first, 100 to a page, with an opaque `cursor` (PostHog's paging of groups)."""

    page_size = 100
    ordering = ("-created_at", "-group_key")

    def get_previous_link(self):
        return None  # forward-only, as PostHog pages groups
