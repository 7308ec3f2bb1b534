"""Reads of insights that take more than one ORM call: list relations, search, views, trending."""
from datetime import timedelta

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
    Window,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from .models import DashboardTile, Insight, InsightViewed, TaggedItem
from .trigram import Similarity, WordSimilarity

MIN_NAME_SIMILARITY = 0.3
# Descriptions are prose: short terms clear a low threshold against long text too easily.
MIN_DESCRIPTION_SIMILARITY = 0.4
DESCRIPTION_WEIGHT = 0.5
TRENDING_VIEWERS = 3


# Plain lists (`to_attr`) rather than prefetched managers: no queryset is built per insight.
RELATION_PREFETCHES = (
    Prefetch(
        "dashboard_tiles",
        # The dashboard's restriction and owner decide who may edit the insight (insights/access.py).
        queryset=DashboardTile.objects.select_related("dashboard").only(
            "id", "dashboard_id", "insight_id", "deleted", "dashboard__restriction_level", "dashboard__created_by_id"
        ),
        to_attr="prefetched_tiles",
    ),
    Prefetch("tagged_items", queryset=TaggedItem.objects.select_related("tag"), to_attr="prefetched_tagged_items"),
)


def live_tiles(insight: Insight) -> list[DashboardTile]:
    tiles = getattr(insight, "prefetched_tiles", None)
    return tiles if tiles is not None else list(DashboardTile.objects.filter(insight=insight).select_related("dashboard"))


def insight_dashboards(insight: Insight) -> list:
    """The live dashboards the insight is shown on."""
    return [tile.dashboard for tile in live_tiles(insight)]


def tag_names(obj) -> list[str]:
    """Tag names of an insight or dashboard."""
    items = getattr(obj, "prefetched_tagged_items", None)
    if items is None:
        items = obj.tagged_items.all()  # prefetched with `tagged_items__tag` where it matters
    return sorted(item.tag.name for item in items)


def with_relations(queryset: QuerySet, *, basic: bool = False) -> QuerySet:
    """Everything the insight serializers read, in a fixed number of queries for any page size."""
    users = ["created_by"] if basic else ["created_by", "last_modified_by"]
    return queryset.select_related(*users).prefetch_related(*RELATION_PREFETCHES)


def with_last_viewed_at(queryset: QuerySet) -> QuerySet:
    """The most recent view of each insight by anyone."""
    latest = InsightViewed.objects.filter(insight=OuterRef("pk")).order_by("-last_viewed_at").values("last_viewed_at")[:1]
    return queryset.annotate(last_viewed_at=Subquery(latest))


def apply_search(queryset: QuerySet, term: str) -> tuple[QuerySet, bool]:
    """Case-insensitive substring matches (`exact`) and trigram word-similarity matches (`similar`)
    over name, derived_name, description and tag names. Annotates `_is_exact` and `_search_score`
    for ordering exact matches first, then by relevance."""
    term = term.replace("\x00", "").strip()
    if not term:
        return queryset, False
    zero, needle = Value(0.0), Value(term)
    exact = (
        Q(name__icontains=term)
        | Q(derived_name__icontains=term)
        | Q(description__icontains=term)
        | Q(id__in=TaggedItem.objects.filter(insight__isnull=False, tag__name__icontains=term).values("insight_id"))
    )
    similar = (
        Q(_word_name__gt=MIN_NAME_SIMILARITY)
        | Q(_word_derived_name__gt=MIN_NAME_SIMILARITY)
        | Q(_word_description__gt=MIN_DESCRIPTION_SIMILARITY)
    )
    queryset = (
        queryset.annotate(
            _word_name=Coalesce(WordSimilarity(needle, "name"), zero),
            _full_name=Coalesce(Similarity("name", needle), zero),
            _word_derived_name=Coalesce(WordSimilarity(needle, "derived_name"), zero),
            _word_description=Coalesce(WordSimilarity(needle, "description"), zero),
        )
        .annotate(
            _is_exact=Case(When(exact, then=Value(1)), default=Value(0), output_field=IntegerField()),
            _search_score=F("_word_name") + F("_full_name") + F("_word_derived_name") + F("_word_description") * DESCRIPTION_WEIGHT,
        )
        .filter(exact | similar)
    )
    return queryset, True


def my_last_viewed(*, team, user, limit: int = 5) -> list[Insight]:
    """This user's most recently viewed live insights in this environment, newest first."""
    views = (
        InsightViewed.objects.filter(team=team, user=user, insight__deleted=False)
        .select_related("insight__created_by")
        .order_by("-last_viewed_at")[:limit]
    )
    insights = []
    for view in views:
        view.insight.last_viewed_at = view.last_viewed_at
        insights.append(view.insight)
    prefetch_related_objects(insights, *RELATION_PREFETCHES)
    return insights


def trending_insights(*, team, days: int, limit: int, offset: int = 0) -> list[Insight]:
    """Live insights of the project ranked by how many viewers saw them in the last `days` days
    (then by last modification), with `view_count`, `last_viewed_at` and up to 3 `viewers`."""
    cutoff = timezone.now() - timedelta(days=days)
    # One grouped query over the window's views ranks the page. An insight's latest view is
    # necessarily inside the window, so the window's maximum is its overall last_viewed_at.
    ranking = list(
        InsightViewed.objects.filter(last_viewed_at__gte=cutoff, insight__team__project_id=team.project_id, insight__deleted=False)
        .values("insight_id", "insight__last_modified_at")
        .annotate(view_count=Count("id"), latest=Max("last_viewed_at"))
        .order_by("-view_count", "-insight__last_modified_at", "-insight_id")[offset : offset + limit]
    )
    by_id = with_relations(Insight.objects.all()).in_bulk([row["insight_id"] for row in ranking])
    insights = []
    for row in ranking:
        insight = by_id[row["insight_id"]]
        insight.view_count, insight.last_viewed_at, insight.viewers = row["view_count"], row["latest"], []
        insights.append(insight)
    viewers = (
        InsightViewed.objects.filter(team=team, insight_id__in=list(by_id), last_viewed_at__gte=cutoff, user__isnull=False)
        .annotate(rank=Window(RowNumber(), partition_by=[F("insight_id")], order_by=[F("last_viewed_at").desc(), F("id").desc()]))
        .filter(rank__lte=TRENDING_VIEWERS)
        .select_related("user")
        .order_by("insight_id", "rank")
    )
    for view in viewers:
        by_id[view.insight_id].viewers.append(view.user)
    return insights
