from rest_framework import serializers

from accounts.serializers import UserBasicSerializer
from queries.sql.cohorts import check_filters, check_query

from .definition import groups_to_filters, parse_filters
from .models import Cohort
from .selectors import reference_loop

COHORT_TYPES = ["static", "person_property", "behavioral", "realtime", "analytical"]
EMPTY_FILTERS = {"properties": {"type": "OR", "values": []}}


class CohortSerializer(serializers.ModelSerializer):
    created_by = UserBasicSerializer(read_only=True)
    name = serializers.CharField(max_length=400, required=False, allow_null=True, allow_blank=True)
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    groups = serializers.JSONField(required=False, help_text="PostHog's legacy cohort format (read as the `filters` tree it "
                                                             "converts to); send `filters` instead.")
    filters = serializers.JSONField(required=False, allow_null=True,
                                    help_text='Dynamic cohorts: `{"properties": {"type": "AND"|"OR", "values": [...]}}` of person, '
                                              "cohort and behavioral filters.")
    query = serializers.JSONField(required=False, allow_null=True,
                                  help_text='Static cohorts: `{"kind": "HogQLQuery", "query": "select person_id from ..."}`, '
                                            "the persons of its first column.")
    cohort_type = serializers.ChoiceField(choices=COHORT_TYPES, required=False, allow_null=True)
    experiment_set = serializers.SerializerMethodField()
    csv = serializers.FileField(required=False, write_only=True, allow_empty_file=True,
                                help_text="Static cohorts (multipart): a CSV of distinct ids, or with a person_id, distinct_id or email header.")
    _create_in_folder = serializers.CharField(required=False, allow_blank=True, write_only=True)
    _create_static_person_ids = serializers.ListField(child=serializers.CharField(), required=False, write_only=True,
                                                      help_text="Person UUIDs to put in a new static cohort.")

    class Meta:
        model = Cohort
        fields = ["id", "name", "description", "groups", "deleted", "filters", "query", "is_calculating", "created_by", "created_at",
                  "last_calculation", "errors_calculating", "count", "is_static", "cohort_type", "experiment_set",
                  "csv", "_create_in_folder", "_create_static_person_ids"]
        read_only_fields = ["id", "is_calculating", "created_by", "created_at", "last_calculation", "errors_calculating", "count",
                            "experiment_set"]

    def get_experiment_set(self, cohort) -> list[int]:
        return []  # no experiments here

    def to_representation(self, cohort):
        data = super().to_representation(cohort)
        if data.get("filters") is None:
            data["filters"] = EMPTY_FILTERS
        return data

    def validate_groups(self, value):
        try:
            self._legacy_filters = groups_to_filters(value) if value else None
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None
        return [] if value is None else value  # `null` is no legacy groups (the column holds a list)

    def validate(self, attrs):
        instance = self.instance
        is_static = attrs.get("is_static", instance.is_static if instance else False)
        if getattr(self, "_legacy_filters", None) and not attrs.get("filters") and not is_static:
            attrs["filters"] = self._legacy_filters  # PostHog reads `groups` as this tree when `filters` is empty
        filters = attrs["filters"] if "filters" in attrs else (instance.filters if instance else None)
        query = attrs["query"] if "query" in attrs else (instance.query if instance else None)
        if attrs.get("filters") and attrs.get("query"):
            raise serializers.ValidationError("Cannot set both query and filters at the same time.")
        if query and not is_static:
            raise serializers.ValidationError("Cannot create a dynamic cohort with a query. Set is_static to true.")
        if attrs.get("query"):
            try:
                check_query(attrs["query"], self.context["team"])
            except serializers.ValidationError as error:
                detail = error.detail[0] if isinstance(error.detail, list) else error.detail
                raise serializers.ValidationError({"query": [str(detail)]}) from None
        if not is_static and "filters" in attrs and filters is not None:
            self._validate_filters(filters)
        return attrs

    def _validate_filters(self, filters):
        try:
            parse_filters(filters)
        except ValueError as error:
            raise serializers.ValidationError({"filters": [str(error)]}) from None
        team = self.context["team"]
        if self.instance is not None and reference_loop(self.instance.id, filters, team):
            raise serializers.ValidationError({"filters": ["Cohorts cannot reference other cohorts in a loop."]})
        try:
            check_filters(filters, team, cohort_id=self.instance.id if self.instance else None)
        except serializers.ValidationError as error:
            detail = error.detail[0] if isinstance(error.detail, list) else error.detail
            raise serializers.ValidationError({"filters": [str(detail)]}) from None


class AddPersonsSerializer(serializers.Serializer):
    person_ids = serializers.ListField(child=serializers.CharField(), help_text="UUIDs of the persons to add (1 to 1000).")

    def validate_person_ids(self, value):
        if not value:
            raise serializers.ValidationError("person_ids cannot be empty")
        if len(value) > 1000:
            raise serializers.ValidationError("List size exceeds limit")
        return value

    def to_internal_value(self, data):
        if isinstance(data, dict) and "person_ids" in data and not isinstance(data["person_ids"], list):
            raise serializers.ValidationError({"person_ids": ["person_ids must be a list"]})
        return super().to_internal_value(data)


class RemovePersonSerializer(serializers.Serializer):
    person_id = serializers.CharField(help_text="UUID of the person to remove.")


class SuccessSerializer(serializers.Serializer):
    success = serializers.BooleanField()


class CohortPersonSerializer(serializers.Serializer):
    type = serializers.CharField(default="person")
    id = serializers.UUIDField(source="uuid")
    uuid = serializers.UUIDField()
    name = serializers.SerializerMethodField()
    distinct_ids = serializers.SerializerMethodField()
    properties = serializers.JSONField()
    created_at = serializers.DateTimeField()
    is_identified = serializers.BooleanField()

    def _distinct_ids(self, person) -> list[str]:
        return [link.distinct_id for link in person.distinct_ids.all()][:10]

    def get_distinct_ids(self, person) -> list[str]:
        return self._distinct_ids(person)

    def get_name(self, person) -> str:
        properties = person.properties if isinstance(person.properties, dict) else {}
        for key in ("email", "name", "username"):
            if properties.get(key):
                return str(properties[key])
        ids = self._distinct_ids(person)
        return ids[0] if ids else str(person.uuid)

    def to_representation(self, person):
        data = super().to_representation(person)
        data["type"] = "person"
        return data


class CohortPersonsPageSerializer(serializers.Serializer):
    results = CohortPersonSerializer(many=True)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
