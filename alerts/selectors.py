"""Reads of alerts and thresholds, with everything their serializers touch loaded up front."""
from django.db.models import Prefetch, QuerySet

from accounts.models import User
from insights.selectors import RELATION_PREFETCHES

from .models import AlertCheck, AlertConfiguration, Threshold

RECENT_CHECKS = 5
MAX_CHECKS = 500


def alerts_with_relations(queryset: QuerySet | None = None) -> QuerySet:
    """Alerts newest first, in a fixed number of queries for any number of them."""
    queryset = AlertConfiguration.objects.all() if queryset is None else queryset
    return (
        queryset.select_related("threshold", "created_by", "insight__created_by")
        .prefetch_related(
            Prefetch("subscribed_users", queryset=User.objects.order_by("id")),
            # What the insight serializers read, loaded the way the insights app loads it.
            *(
                Prefetch(f"insight__{prefetch.prefetch_through}", queryset=prefetch.queryset, to_attr=prefetch.to_attr)
                for prefetch in RELATION_PREFETCHES
            ),
        )
        .order_by("-created_at", "-id")
    )


def team_alerts(team, insight_id: int | None = None) -> QuerySet:
    queryset = AlertConfiguration.objects.filter(team=team)
    if insight_id is not None:
        queryset = queryset.filter(insight_id=insight_id)
    return alerts_with_relations(queryset)


def checks_within(alert: AlertConfiguration, date_from=None, date_to=None) -> QuerySet:
    """The alert's checks created within [date_from, date_to] (either bound optional), newest first."""
    checks = alert.checks.order_by("-created_at", "-id")
    if date_from is not None:
        checks = checks.filter(created_at__gte=date_from)
    if date_to is not None:
        checks = checks.filter(created_at__lte=date_to)
    return checks


def recent_checks(alert: AlertConfiguration, limit: int = RECENT_CHECKS, offset: int = 0, *, date_from=None, date_to=None) -> list[AlertCheck]:
    return list(checks_within(alert, date_from, date_to)[offset:offset + limit])


def alerts_by_insight(insight_ids) -> dict[int, list[AlertConfiguration]]:
    grouped: dict[int, list[AlertConfiguration]] = {insight_id: [] for insight_id in insight_ids}
    for alert in alerts_with_relations(AlertConfiguration.objects.filter(insight_id__in=list(grouped))):
        grouped[alert.insight_id].append(alert)
    return grouped


def insight_thresholds(team, insight_id: int) -> QuerySet:
    return (
        Threshold.objects.filter(team=team, insight_id=insight_id)
        .prefetch_related(Prefetch("alerts", queryset=alerts_with_relations()))
        .order_by("-created_at", "-id")
    )
