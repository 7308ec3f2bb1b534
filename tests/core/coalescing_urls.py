"""A slow, countable team-nested endpoint at a coalescing-eligible path, for the coalescing tests."""
import time

from django.core.cache import cache

from django.urls import include, path
from rest_framework import permissions, viewsets
from rest_framework.response import Response

from core.coalescing import QueryCoalescingMixin
from core.mixins import TeamScopedViewSetMixin
from core.routers import TeamNestedRouter
from insights.views import InsightViewSet
from sharing.authentication import is_sharing_request

COUNTER = "coalescing-test-computations"


def computations() -> int:
    """How many times the endpoint really ran, across processes when the cache is Redis."""
    return cache.get(COUNTER, 0)


def reset_computations() -> None:
    cache.set(COUNTER, 0, timeout=None)


class SlowQueryViewSet(QueryCoalescingMixin, TeamScopedViewSetMixin, viewsets.ViewSet):
    scope_object = "query"

    def create(self, request, *args, **kwargs):
        count = cache.incr(COUNTER)
        time.sleep(float(request.data.get("sleep", 1.0)))
        status = int(request.data.get("status", 200))
        if status >= 500:
            raise RuntimeError("leader failed")
        return Response({"computed": count, "team": self.team.id}, status=status)


class DenyObjectsByHeader(permissions.BasePermission):
    """Object permissions that differ between callers of one coalescing key (headers are not in it)."""

    message = "This caller may not see this object."

    def has_object_permission(self, request, view, obj):
        return str(obj.pk) not in request.headers.get("X-Denied-Objects", "").split(",")


class SlowInsightViewSet(InsightViewSet):
    """The real insights viewset (authentication, sharing, permissions), with a slow, countable retrieve."""

    def get_permissions(self):
        extra = [] if is_sharing_request(self.request) else [DenyObjectsByHeader()]
        return [*super().get_permissions(), *extra]

    def retrieve(self, request, *args, **kwargs):
        cache.incr(COUNTER)
        time.sleep(float(request.query_params.get("sleep", 1.0)))
        return super().retrieve(request, *args, **kwargs)


router = TeamNestedRouter()
router.register("query", SlowQueryViewSet, basename="slow_query")
router.register("insights", SlowInsightViewSet, basename="slow_insights")

urlpatterns = [path("api/", include(router.urls)), path("", include("insights_api.urls"))]
