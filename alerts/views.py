"""Alerts (`/api/projects/:id/alerts/`) and insight thresholds (`.../insights/:insight_id/thresholds/`)."""
from zoneinfo import ZoneInfo

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, viewsets
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from core.mixins import TeamScopedViewSetMixin
from queries.dates import parse_date

from .models import AlertConfiguration, Threshold
from .selectors import MAX_CHECKS, RECENT_CHECKS, checks_within, insight_thresholds, recent_checks, team_alerts
from .serializers import AlertSerializer, ThresholdWithAlertsSerializer
from .services import create_alert, delete_alert, update_alert

MAX_DATABASE_ID = 2**63 - 1


def _database_id(raw) -> int | None:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if 0 < value <= MAX_DATABASE_ID else None


def _bounded_int(params, name: str, default: int, lowest: int, highest: int) -> int:
    if name not in params:
        return default
    try:
        value = int(params[name])
    except (TypeError, ValueError):
        value = None
    if value is None or not lowest <= value <= highest:
        raise exceptions.ValidationError({name: [f"Ensure this value is an integer between {lowest} and {highest}."]})
    return value


UTC = ZoneInfo("UTC")


def _check_date(params, name: str):
    """A check-window bound in UTC, as PostHog reads it: relative hours keep the minute, relative
    days start at midnight, ISO dates are taken as they are; an unreadable value is now."""
    value = params.get(name)
    if not value:
        return None
    now = timezone.now()
    try:
        moment, relative, hours = parse_date(value, UTC, now, truncate=False)
        if relative and not hours:
            moment, _, _ = parse_date(value, UTC, now, truncate=True)
    except (OverflowError, ValueError):
        raise exceptions.ValidationError({name: ["The date is outside the supported range of dates."]}) from None
    return moment


@extend_schema_view(
    list=extend_schema(
        parameters=[OpenApiParameter("insight", OpenApiTypes.INT, description="Only the alerts on this insight.")]
    ),
    retrieve=extend_schema(
        description="One alert, with its checks newest first in `checks` (the last 5 unless paged) and their number in `checks_total`.",
        parameters=[
            OpenApiParameter("checks_limit", OpenApiTypes.INT, description="How many checks to return (default 5, max 500)."),
            OpenApiParameter("checks_offset", OpenApiTypes.INT, description="How many of the newest checks to skip (default 0)."),
            OpenApiParameter("checks_date_from", OpenApiTypes.STR,
                             description="Only checks created at or after this date: relative (`-24h`, `-7d`) or ISO 8601."),
            OpenApiParameter("checks_date_to", OpenApiTypes.STR,
                             description="Only checks created at or before this date: relative (`-1h`) or ISO 8601. "
                                         "With either date, up to 500 checks are returned unless `checks_limit` says otherwise."),
        ],
    ),
)
class AlertViewSet(TeamScopedViewSetMixin, viewsets.ModelViewSet):
    scope_object = "alert"
    serializer_class = AlertSerializer
    queryset = AlertConfiguration.objects.none()
    parser_classes = [JSONParser]  # nested objects (threshold, condition, config) only make sense as JSON

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        insight_id = None
        if self.action == "list" and "insight" in self.request.query_params:
            insight_id = _database_id(self.request.query_params["insight"])
            if insight_id is None:
                raise exceptions.ValidationError({"insight": ["A valid integer is required."]})
        return team_alerts(self.team, insight_id)

    def retrieve(self, request, *args, **kwargs):
        date_from, date_to = (_check_date(request.query_params, name) for name in ("checks_date_from", "checks_date_to"))
        # A time window returns every check in it (up to the maximum) unless a limit is asked for.
        default_limit = MAX_CHECKS if date_from or date_to else RECENT_CHECKS
        limit = _bounded_int(request.query_params, "checks_limit", default_limit, 1, MAX_CHECKS)
        offset = _bounded_int(request.query_params, "checks_offset", 0, 0, MAX_DATABASE_ID)
        alert = self.get_object()
        alert.recent_checks = recent_checks(alert, limit, offset, date_from=date_from, date_to=date_to)
        alert.checks_total = checks_within(alert, date_from, date_to).count()
        return Response(self.get_serializer(alert).data)

    def perform_create(self, serializer):
        alert = create_alert(self.team, self.request.user, serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=alert.pk)

    def perform_update(self, serializer):
        alert = update_alert(serializer.instance, self.request.user, serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=alert.pk)

    def perform_destroy(self, alert):
        delete_alert(alert)


INSIGHT_ID_PARAMETER = OpenApiParameter("insight_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Id of the insight.")


@extend_schema(parameters=[INSIGHT_ID_PARAMETER])
@extend_schema_view(
    list=extend_schema(description="The thresholds drawn on an insight, each with its alerts."),
)
class ThresholdViewSet(TeamScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    scope_object = "alert"
    serializer_class = ThresholdWithAlertsSerializer
    queryset = Threshold.objects.none()

    def check_permissions(self, request):
        # Thresholds are written through alerts: any other method is a 405 for every signed-in
        # caller, rather than a scoped key's "action does not support Personal API Key access".
        if self.action is None and request.method != "OPTIONS" and request.user.is_authenticated:
            raise exceptions.MethodNotAllowed(request.method)
        super().check_permissions(request)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        insight_id = _database_id(self.kwargs.get("insight_id"))
        if insight_id is None:
            raise exceptions.NotFound()
        return insight_thresholds(self.team, insight_id)
