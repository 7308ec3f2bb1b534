"""Request parsing and OpenAPI shapes of the /query/ endpoint."""
from typing import Any, Optional, Union

from pydantic import ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from rest_framework import serializers
from rest_framework.exceptions import ParseError

from .modes import ExecutionMode
from .schema import QuerySchemaRoot, SchemaModel

MODES = [mode.value for mode in ExecutionMode]


class QueryRequest(SchemaModel):
    """PostHog's QueryRequest body: `{query, refresh?, client_query_id?, async?, name?}`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    query: QuerySchemaRoot
    client_query_id: Optional[str] = None
    refresh: Optional[Union[bool, str]] = None
    async_: Optional[bool] = Field(default=None, alias="async")
    name: Optional[str] = None
    filters_override: Optional[dict[str, Any]] = None
    variables_override: Optional[dict[str, Any]] = None


def parse_query_request(data: Any) -> QueryRequest:
    try:
        request = QueryRequest.model_validate(data)
    except PydanticValidationError as error:
        raise ParseError(f"JSON parse error - {error}") from None
    # The body is typed (PostHog's RefreshType): a string that names no mode is a parse error here.
    if isinstance(request.refresh, str) and request.refresh not in MODES:
        raise ParseError(f"JSON parse error - refresh must be a boolean or one of: {', '.join(MODES)}")
    return request


class QueryRequestSerializer(serializers.Serializer):
    query = serializers.JSONField(help_text="The query node to run, e.g. {\"kind\": \"TrendsQuery\", \"series\": [...]}")
    client_query_id = serializers.CharField(required=False, help_text="Client-provided id; the async job id when set.")
    refresh = serializers.ChoiceField(
        choices=list(MODES), required=False,
        help_text="Execution mode (default blocking on this endpoint); `true` means force_blocking.",
    )
    name = serializers.CharField(required=False)


class QueryStatusSerializer(serializers.Serializer):
    id = serializers.CharField()
    query_async = serializers.BooleanField()
    team_id = serializers.IntegerField()
    insight_id = serializers.IntegerField(allow_null=True)
    dashboard_id = serializers.IntegerField(allow_null=True)
    error = serializers.BooleanField()
    complete = serializers.BooleanField()
    error_message = serializers.CharField(allow_null=True)
    results = serializers.JSONField(allow_null=True, help_text="The full query response once complete.")
    pickup_time = serializers.DateTimeField(allow_null=True)
    start_time = serializers.DateTimeField(allow_null=True)
    end_time = serializers.DateTimeField(allow_null=True)
    expiration_time = serializers.DateTimeField(allow_null=True)
    task_id = serializers.CharField(allow_null=True)
    query_progress = serializers.JSONField(allow_null=True)
    labels = serializers.ListField(child=serializers.CharField(), allow_null=True)


class QueryStatusResponseSerializer(serializers.Serializer):
    query_status = QueryStatusSerializer()


class QueryResponseSerializer(serializers.Serializer):
    results = serializers.JSONField(required=False, help_text="Query results (trends: one object per series).")
    hasMore = serializers.BooleanField(required=False)
    columns = serializers.ListField(required=False, help_text="SQL and event list queries: the column names.")
    types = serializers.ListField(required=False, help_text="SQL: [name, ClickHouse type] pairs; event lists: type names.")
    limit = serializers.IntegerField(required=False, help_text="SQL and event list queries: the page size used.")
    offset = serializers.IntegerField(required=False, help_text="SQL and event list queries: the page offset used.")
    query = serializers.CharField(required=False, help_text="SQL queries: the query as sent.")
    hogql = serializers.CharField(required=False, help_text="The SQL that computed the results, as executed.")
    modifiers = serializers.JSONField(required=False)
    error = serializers.CharField(required=False, allow_null=True)
    resolved_date_range = serializers.JSONField(required=False, help_text="{date_from, date_to} used.")
    is_cached = serializers.BooleanField(required=False)
    last_refresh = serializers.DateTimeField(required=False)
    next_allowed_client_refresh = serializers.DateTimeField(required=False)
    cache_target_age = serializers.DateTimeField(required=False, allow_null=True)
    cache_key = serializers.CharField(required=False, allow_null=True)
    timezone = serializers.CharField(required=False)
    query_status = QueryStatusSerializer(required=False, allow_null=True)


class CancelResponseSerializer(serializers.Serializer):
    message = serializers.CharField()
