"""A slow, countable team-nested endpoint at a coalescing-eligible path, for the coalescing tests."""
import time

from django.core.cache import cache

from django.urls import include, path
from rest_framework import viewsets
from rest_framework.response import Response

from core.coalescing import QueryCoalescingMixin
from core.mixins import TeamScopedViewSetMixin
from core.routers import TeamNestedRouter

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


router = TeamNestedRouter()
router.register("query", SlowQueryViewSet, basename="slow_query")

urlpatterns = [path("api/", include(router.urls)), path("", include("insights_api.urls"))]
