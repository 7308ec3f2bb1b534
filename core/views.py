import sys

from django.conf import settings
from django.http import JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from .coalescing import read_counters

from .exceptions import server_error_body
from .faults import as_unavailable, unavailable_response


def server_error(request, *args, **kwargs):
    """500s outside DRF views answer in the API's error shape too (503 for an outage)."""
    unavailable = as_unavailable(sys.exc_info()[1])
    if unavailable is not None:
        return unavailable_response(unavailable)
    return JsonResponse(server_error_body(), status=500)


def not_found(request, exception=None, *args, **kwargs):
    return JsonResponse({"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}, status=404)


class QueryCoalescingStatsView(APIView):
    """Counters of query coalescing since the store was last emptied (staff only)."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        operation_id="instance_status_query_coalescing_retrieve",
        responses=inline_serializer(
            "QueryCoalescingStats",
            {name: serializers.IntegerField() for name in ("leader", "follower_served", "fallthrough")} | {"enabled": serializers.BooleanField(), "backend": serializers.CharField()},
        ),
    )
    def get(self, request):
        backend = "redis" if settings.REDIS_URL else "in-process"
        return Response({**read_counters(), "enabled": settings.QUERY_COALESCING_ENABLED, "backend": backend})
