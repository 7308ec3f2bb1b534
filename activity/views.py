"""Activity pages for viewsets that expose an item's history (e.g. `insights/:id/activity/`)."""
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from .selectors import load_activity
from .serializers import ActivityLogSerializer, ActivityPageParamsSerializer


def activity_page_response(request, *, scope: str, team_id: int, item_ids: list[str] | None = None) -> Response:
    params = ActivityPageParamsSerializer(data=request.query_params)
    params.is_valid(raise_exception=True)
    limit, page = params.validated_data["limit"], params.validated_data["page"]
    activity = load_activity(scope=scope, team_id=team_id, item_ids=item_ids, limit=limit, page=page)
    return Response(
        {
            "results": ActivityLogSerializer(activity.results, many=True).data,
            "next": _page_url(request, page + 1, limit) if activity.has_next else None,
            "previous": _page_url(request, page - 1, limit) if activity.has_previous else None,
            "total_count": activity.total_count,
        }
    )


def _page_url(request, page: int, limit: int) -> str:
    url = replace_query_param(request.build_absolute_uri(), "page", page)
    return replace_query_param(url, "limit", limit)
