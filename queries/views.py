"""`/api/projects/:id/query/`: run any supported query, poll and cancel async runs (PostHog's QueryViewSet)."""
from django.http import JsonResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.response import Response

from core.coalescing import QueryCoalescingMixin
from core.mixins import TeamScopedViewSetMixin

from . import api, execution
from .modes import ExecutionMode, resolve_refresh
from .serializers import (
    CancelResponseSerializer,
    QueryRequestSerializer,
    QueryResponseSerializer,
    QueryStatusResponseSerializer,
    parse_query_request,
)


class QueryViewSet(QueryCoalescingMixin, TeamScopedViewSetMixin, viewsets.ViewSet):
    scope_object = "query"
    # PostHog treats every action of this endpoint, POST and DELETE included, as a read.
    required_scopes = ["query:read"]
    lookup_field = "query_id"
    lookup_value_regex = "[^/]+"

    @extend_schema(
        request=QueryRequestSerializer,
        responses={
            200: QueryResponseSerializer,
            202: OpenApiResponse(QueryResponseSerializer, description="An async run was started; poll query_status.id."),
        },
        description="Run a query. `force_cache` is upgraded to `blocking`: this endpoint computes stale results.",
    )
    def create(self, request, *args, **kwargs):
        query_request = parse_query_request(request.data)
        mode = resolve_refresh(query_request.refresh if query_request.refresh is not None else ExecutionMode.BLOCKING)
        if query_request.async_:
            mode = ExecutionMode.ASYNC
        if mode == ExecutionMode.FORCE_CACHE:
            mode = ExecutionMode.BLOCKING
        query = execution.apply_dashboard_filters(request.data["query"], query_request.filters_override)
        query = execution.apply_dashboard_variables(query, query_request.variables_override)
        result = execution.execute(self.team, query, mode, user=request.user, query_id=query_request.client_query_id)
        query_status = result.get("query_status")
        running = bool(query_status) and query_status.get("complete") is False
        return Response(result, status=status.HTTP_202_ACCEPTED if running else status.HTTP_200_OK)

    @extend_schema(
        parameters=[OpenApiParameter("show_progress", bool, description="Accepted for compatibility; progress is not tracked.")],
        responses={
            200: QueryStatusResponseSerializer,
            202: OpenApiResponse(QueryStatusResponseSerializer, description="Still running."),
            400: OpenApiResponse(QueryStatusResponseSerializer, description="Failed with an error message."),
            500: OpenApiResponse(QueryStatusResponseSerializer, description="Failed without a message."),
        },
        description="The status of an async query; `query_status.results` holds the response once complete.",
    )
    def retrieve(self, request, query_id=None, *args, **kwargs):
        query_status = api.get_query_status(self.team, query_id)
        if query_status["error"]:
            code = status.HTTP_400_BAD_REQUEST if query_status["error_message"] else status.HTTP_500_INTERNAL_SERVER_ERROR
        else:
            code = status.HTTP_200_OK if query_status["complete"] else status.HTTP_202_ACCEPTED
        return JsonResponse({"query_status": query_status}, status=code)

    @extend_schema(
        parameters=[OpenApiParameter("dequeue_only", bool, description="Accepted for compatibility.")],
        responses={200: CancelResponseSerializer},
        description="Cancel an async query.",
    )
    def destroy(self, request, query_id=None, *args, **kwargs):
        return Response({"message": api.cancel_query(self.team, query_id)})
