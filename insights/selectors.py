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


RELATION_PREFETCHES = (
    Prefetch("dashboard_tiles", queryset=DashboardTile.objects.only("id", "dashboard_id", "insight_id", "deleted")),
    Prefetch("tagged_items", queryset=TaggedItem.objects.select_related("tag")),
)


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
    """Live insights of the project ranked by how many viewers saw them in the last `days` days."""
    cutoff = timezone.now() - timedelta(days=days)
    ranked = (
        Insight.objects.filter(team__project_id=team.project_id)
        .annotate(
            view_count=Count("views", filter=Q(views__last_viewed_at__gte=cutoff)),
            last_viewed_at=Max("views__last_viewed_at"),
        )
        .filter(view_count__gt=0)
        .order_by("-view_count", "-last_modified_at", "-id")
    )
    insights = list(with_relations(ranked)[offset : offset + limit])
    viewers = (
        InsightViewed.objects.filter(team=team, insight_id__in=[i.id for i in insights], last_viewed_at__gte=cutoff, user__isnull=False)
        .annotate(rank=Window(RowNumber(), partition_by=[F("insight_id")], order_by=[F("last_viewed_at").desc(), F("id").desc()]))
        .filter(rank__lte=TRENDING_VIEWERS)
        .select_related("user")
        .order_by("insight_id", "rank")
    )
    by_insight: dict[int, list] = {}
    for view in viewers:
        by_insight.setdefault(view.insight_id, []).append(view.user)
    for insight in insights:
        insight.viewers = by_insight.get(insight.id, [])
    return insights
