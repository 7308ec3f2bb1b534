"""Cohorts (`/api/projects/:id/cohorts/`): CRUD with soft delete, members, static imports."""
import csv
import io
import json

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework_csv.renderers import CSVRenderer

from activity.serializers import ActivityPageSerializer
from activity.views import activity_page_response
from core.mixins import TeamScopedViewSetMixin
from core.openapi import AutoSchema
from core.pagination import OffsetWindow

from .filters import CohortFilter
from .models import Cohort
from .selectors import cohort_persons, live_cohorts
from .serializers import (
    AddPersonsSerializer, CohortPersonSerializer, CohortPersonsPageSerializer, CohortSerializer, RemovePersonSerializer, SuccessSerializer,
)
from .services import (
    SCOPE, add_persons_to_static_cohort, create_cohort, duplicate_as_static, remove_person_from_static_cohort, update_cohort,
)

PROJECT_ID_PARAMETER = OpenApiParameter(
    "project_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="Project ID of the project you're trying to access. To find the ID of the project, make a call to /api/projects/.",
)
ACTIVITY_PARAMETERS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description="Page size. Defaults to 10."),
    OpenApiParameter("page", OpenApiTypes.INT, description="1-indexed page number. Defaults to 1."),
]
PERSONS_DEFAULT_LIMIT = 100
CSV_EXPORT_LIMIT = 300_000
CSV_COLUMNS = ["id", "email", "name", "created_at", "properties", "distinct_ids"]


class CohortSchema(AutoSchema):
    def get_operation_id(self):
        # The item's and the project's `activity` routes would share an id: tell them apart as PostHog does.
        operation_id = super().get_operation_id()
        return f"{operation_id}_2" if getattr(self.view, "action", None) == "activity" else operation_id


@extend_schema(parameters=[PROJECT_ID_PARAMETER])
class CohortViewSet(TeamScopedViewSetMixin, mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                    mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """Cohorts of a project: dynamic (computed from `filters`) or static (listed persons).
    Soft delete with `PATCH {"deleted": true}`; `DELETE` is refused."""

    scope_object = "cohort"
    required_scopes: list[str] | None = None  # set per extra action
    serializer_class = CohortSerializer
    queryset = Cohort.objects.none()
    parser_classes = [JSONParser, MultiPartParser, FormParser]
    filterset_class = CohortFilter
    schema = CohortSchema()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return live_cohorts(self.team).order_by("-created_at", "-id")

    def filter_queryset_by_team(self, queryset):
        return queryset  # live_cohorts scopes to the project

    def destroy(self, request, *args, **kwargs):
        # Cohorts are soft deleted with PATCH {"deleted": true}.
        raise MethodNotAllowed(request.method)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("_create_in_folder", None)
        csv_file, person_ids = data.pop("csv", None), data.pop("_create_static_person_ids", None)
        serializer.instance = create_cohort(team=self.team, user=self.request.user, data=data, csv_file=csv_file, person_ids=person_ids)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("_create_in_folder", None)
        data.pop("_create_static_person_ids", None)
        csv_file = data.pop("csv", None)
        serializer.instance = update_cohort(cohort=serializer.instance, user=self.request.user, data=data, csv_file=csv_file)

    @extend_schema(
        parameters=[
            OpenApiParameter("limit", OpenApiTypes.INT, description="Persons per page (default 100)."),
            OpenApiParameter("offset", OpenApiTypes.INT, description="Persons to skip."),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"], description="`csv` for a CSV file of the members."),
        ],
        responses={200: CohortPersonsPageSerializer, (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The members as CSV.")},
    )
    @action(methods=["GET"], detail=True, required_scopes=["cohort:read", "person:read"], filter_backends=[], pagination_class=None,
            renderer_classes=[*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer])
    def persons(self, request, *args, **kwargs):
        """The cohort's members at its last calculation, `limit` at a time."""
        cohort = self.get_object()
        is_csv = request.query_params.get("format") == "csv" or request.query_params.get("is_csv_export") in ("1", "true", "True")
        window = OffsetWindow(request, default_limit=CSV_EXPORT_LIMIT if is_csv else PERSONS_DEFAULT_LIMIT, max_limit=CSV_EXPORT_LIMIT)
        persons = list(window.slice(cohort_persons(cohort)))
        results = CohortPersonSerializer(persons, many=True).data
        if is_csv:
            return _csv_response(results, cohort)
        return Response({"results": results, "next": window.next_url(len(persons) == window.limit), "previous": window.previous_url()})

    @extend_schema(request=AddPersonsSerializer, responses={200: SuccessSerializer})
    @action(methods=["PATCH"], detail=True, required_scopes=["cohort:write"], filter_backends=[])
    def add_persons_to_static_cohort(self, request, *args, **kwargs):
        """Add persons (by UUID) to a static cohort."""
        cohort = self.get_object()
        payload = AddPersonsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        add_persons_to_static_cohort(cohort=cohort, user=request.user, person_ids=payload.validated_data["person_ids"])
        return Response({"success": True})

    @extend_schema(request=RemovePersonSerializer, responses={200: SuccessSerializer})
    @action(methods=["PATCH"], detail=True, required_scopes=["cohort:write"], filter_backends=[])
    def remove_person_from_static_cohort(self, request, *args, **kwargs):
        """Remove one person (by UUID) from a static cohort."""
        cohort = self.get_object()
        payload = RemovePersonSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        remove_person_from_static_cohort(cohort=cohort, user=request.user, person_id=payload.validated_data["person_id"])
        return Response({"success": True})

    @extend_schema(request=None, responses={200: CohortSerializer})
    @action(methods=["GET"], detail=True, required_scopes=["cohort:write"], filter_backends=[])
    def duplicate_as_static_cohort(self, request, *args, **kwargs):
        """A new static cohort with this cohort's current members."""
        copy = duplicate_as_static(cohort=self.get_object(), user=request.user)
        return Response(CohortSerializer(copy, context=self.get_serializer_context()).data)

    @extend_schema(parameters=ACTIVITY_PARAMETERS, responses={200: ActivityPageSerializer})
    @action(methods=["GET"], detail=True, required_scopes=["activity_log:read"], filter_backends=[], pagination_class=None)
    def activity(self, request, *args, **kwargs):
        """The change history of one cohort, newest first."""
        cohort = self.get_object()
        return activity_page_response(request, scope=SCOPE, team_id=self.team.id, item_ids=[str(cohort.id)])

    @extend_schema(parameters=ACTIVITY_PARAMETERS, responses={200: ActivityPageSerializer})
    @action(methods=["GET"], detail=False, url_path="activity", required_scopes=["activity_log:read"], filter_backends=[],
            pagination_class=None)
    def all_activity(self, request, *args, **kwargs):
        """The change history of the project's cohorts, newest first."""
        return activity_page_response(request, scope=SCOPE, team_id=self.team.id)


def _csv_response(results: list[dict], cohort: Cohort) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for person in results:
        properties = dict(person["properties"] or {})
        email = properties.pop("email", "")
        writer.writerow([person["id"], email, person["name"], person["created_at"], json.dumps(properties), ",".join(person["distinct_ids"])])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="cohort-{cohort.id}-persons.csv"'
    return response
