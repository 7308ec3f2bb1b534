from dataclasses import dataclass

from .models import ActivityLog


@dataclass(frozen=True)
class ActivityPage:
    results: list[ActivityLog]
    total_count: int
    has_next: bool
    has_previous: bool


def load_activity(*, scope: str, team_id: int, item_ids: list[str] | None = None, limit: int = 10, page: int = 1) -> ActivityPage:
    """Newest first. A page past the end is empty rather than an error."""
    queryset = ActivityLog.objects.filter(team_id=team_id, scope=scope)
    if item_ids is not None:
        queryset = queryset.filter(item_id__in=item_ids)
    total = queryset.count()
    start = (page - 1) * limit
    results = list(queryset.select_related("user").order_by("-created_at")[start : start + limit]) if start < total else []
    return ActivityPage(results=results, total_count=total, has_next=start + limit < total, has_previous=page > 1)
