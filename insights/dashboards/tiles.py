"""A dashboard's tiles as shown, with every insight's results computed in one call."""
from django.db.models import Q

from queries.api import ExecutionMode

from ..models import DashboardTile, Insight
from ..results import DashboardContext, insight_results, shown_query
from ..selectors import with_last_viewed_at, with_relations
from ..serializers import InsightSerializer


def live_dashboard_tiles(dashboard) -> list[DashboardTile]:
    """The dashboard's shown tiles (not soft-deleted; text tiles, and insight tiles whose insight is
    not deleted), oldest first."""
    return list(DashboardTile.objects.filter(Q(insight__isnull=True) | Q(insight__deleted=False), dashboard=dashboard)
                .select_related("text__created_by", "text__last_modified_by").order_by("id"))


def tile_insights(dashboard) -> tuple[list[DashboardTile], list[Insight], dict[int, DashboardContext]]:
    """The shown tiles, their insights (with what the serializer reads) and each insight's dashboard context."""
    tiles = live_dashboard_tiles(dashboard)
    insight_tiles = [tile for tile in tiles if tile.insight_id is not None]
    insights = list(with_last_viewed_at(with_relations(Insight.objects.filter(id__in=[tile.insight_id for tile in insight_tiles]))))
    contexts = {tile.insight_id: DashboardContext(dashboard, tile_filters=tile.filters_overrides or None) for tile in insight_tiles}
    return tiles, insights, contexts


def render_tiles(dashboard, *, refresh: ExecutionMode, context: dict, computed=None) -> list[dict]:
    """Serialized tiles: the dashboard's filters and variables apply to every tile's query, the
    tile's `filters_overrides` on top. Queries: a fixed number for any number of tiles, plus the computations.

    `computed`: `(tiles, insights, contexts, results)` already read and computed (a public page's)."""
    from .serializers import DashboardTileSerializer

    if computed is None:
        tiles, insights, contexts = tile_insights(dashboard)
        user = getattr(context.get("request"), "user", None)
        results = insight_results(insights, context.get("team"), refresh, user, contexts=contexts)
    else:
        tiles, insights, contexts, results = computed
    insight_context = {**context, "refresh": refresh, "results": results}
    by_id = {}
    for insight, data in zip(insights, InsightSerializer(insights, many=True, context=insight_context).data):
        data["query"] = contexts[insight.id].returned_query(shown_query(insight))
        by_id[insight.id] = data
    return DashboardTileSerializer(tiles, many=True, context={**context, "tile_insights": by_id}).data
