"""Alert, threshold and alert-check shapes (PostHog's AlertSerializer family) and their validation."""
import re
from datetime import datetime, timedelta, timezone as dt_timezone

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import OrganizationMembership, User
from accounts.serializers import UserBasicSerializer
from insights.models import Insight
from insights.serializers import InsightBasicSerializer

from .config import (
    AlertConfigError,
    HogQLAlertConfig,
    alertable_query_kind,
    normalize_schedule_restriction,
    parse_threshold,
    validate_alert_setup,
)
from .evaluation import EvaluationError, check_sql_column
from .models import AlertCheck, AlertConfiguration, CalculationInterval, Threshold

THRESHOLD_CONFIGURATION_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["absolute", "percentage"]},
        "bounds": {
            "type": "object",
            "nullable": True,
            "additionalProperties": False,
            "properties": {"lower": {"type": "number", "nullable": True}, "upper": {"type": "number", "nullable": True}},
        },
    },
}
CONDITION_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {"type": {"type": "string", "enum": ["absolute_value", "relative_increase", "relative_decrease"]}},
}
CONFIG_SCHEMA = {
    "nullable": True,
    "oneOf": [
        {
            "type": "object",
            "title": "TrendsAlertConfig",
            "additionalProperties": False,
            "required": ["type", "series_index"],
            "properties": {
                "type": {"type": "string", "enum": ["TrendsAlertConfig"]},
                "series_index": {"type": "integer", "minimum": 0, "description": "Zero-based index of the series (or formula) to monitor."},
                "check_ongoing_interval": {"type": "boolean", "nullable": True, "description": "Also check the interval still in progress (needs an upper bound)."},
            },
        },
        {
            "type": "object",
            "title": "HogQLAlertConfig",
            "additionalProperties": False,
            "required": ["type", "evaluation"],
            "properties": {
                "type": {"type": "string", "enum": ["HogQLAlertConfig"]},
                "column": {"type": "string", "nullable": True, "description": "The numeric result column to evaluate; unset: the single numeric column."},
                "evaluation": {"type": "string", "enum": ["last_row", "first_row", "any_row"], "description": "`last_row` (oldest first result), `first_row` (newest first result) or `any_row` (fires if any row breaches)."},
                "label_column": {"type": "string", "nullable": True, "description": "Column naming the evaluated row(s); unset: the first column not evaluated."},
            },
        },
        {
            "type": "object",
            "title": "FunnelsAlertConfig",
            "additionalProperties": False,
            "required": ["type", "metric"],
            "properties": {
                "type": {"type": "string", "enum": ["FunnelsAlertConfig"]},
                "funnel_step": {"type": "integer", "minimum": 0, "nullable": True, "description": "Zero-based step to evaluate; null: the last step (overall conversion)."},
                "metric": {"type": "string", "enum": ["conversion_from_start", "conversion_from_previous"]},
                "check_ongoing_interval": {"type": "boolean", "nullable": True},
            },
        },
    ],
}
SCHEDULE_RESTRICTION_SCHEMA = {
    "type": "object",
    "nullable": True,
    "additionalProperties": False,
    "required": ["blocked_windows"],
    "properties": {
        "blocked_windows": {
            "type": "array",
            "maxItems": 5,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["start", "end"],
                "properties": {
                    "start": {"type": "string", "description": "HH:MM (24-hour, project timezone), inclusive."},
                    "end": {"type": "string", "description": "HH:MM, exclusive; before `start` for a window past midnight."},
                },
            },
        }
    },
}
RELATIVE_SNOOZE = re.compile(r"^\+?(\d+)?([hdwmy])$", re.IGNORECASE)


@extend_schema_field(THRESHOLD_CONFIGURATION_SCHEMA)
class ThresholdConfigurationField(serializers.JSONField):
    def to_internal_value(self, data):
        try:
            parse_threshold(data)
        except AlertConfigError as error:
            raise serializers.ValidationError(str(error)) from None
        return data


@extend_schema_field(CONDITION_SCHEMA)
class ConditionField(serializers.JSONField):
    pass


@extend_schema_field(CONFIG_SCHEMA)
class AlertConfigField(serializers.JSONField):
    pass


@extend_schema_field(SCHEDULE_RESTRICTION_SCHEMA)
class ScheduleRestrictionField(serializers.JSONField):
    def to_internal_value(self, data):
        try:
            return normalize_schedule_restriction(data)
        except AlertConfigError as error:
            raise serializers.ValidationError(str(error)) from None


@extend_schema_field({"type": "object", "nullable": True, "description": "Anomaly detectors are not supported: always null."})
class DetectorConfigField(serializers.JSONField):
    def to_internal_value(self, data):
        raise serializers.ValidationError("Anomaly detection alerts are not supported by this server.")


@extend_schema_field(
    {
        "type": "string",
        "format": "date-time",
        "nullable": True,
        "description": "Snooze the alert until this time: an ISO 8601 datetime, or a relative time such as `2h`, `1d` "
        "or `1w` from now (hours are rounded down to the hour, longer spans to the start of the day, UTC). "
        "Null unsnoozes.",
    }
)
class SnoozeUntilField(serializers.DateTimeField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("snoozed_until has to be passed in string format")
        parsed = parse_snooze(data, timezone.now())
        if parsed is None:
            raise serializers.ValidationError("snoozed_until must be an ISO 8601 datetime or a relative time like '2h' or '1d'.")
        return parsed


def parse_snooze(value: str, now: datetime) -> datetime | None:
    value = value.strip()
    match = RELATIVE_SNOOZE.match(value)
    if match:
        count, unit = int(match.group(1) or 1), match.group(2).lower()
        moment = now.astimezone(dt_timezone.utc)
        if unit == "h":
            return (moment + timedelta(hours=count)).replace(minute=0, second=0, microsecond=0)
        if unit in ("m", "y"):
            months = count * (12 if unit == "y" else 1)
            year, month = divmod(moment.month - 1 + months, 12)
            day = min(moment.day, 28)
            target = moment.replace(year=moment.year + year, month=month + 1, day=day)
        else:
            target = moment + timedelta(days=count * (7 if unit == "w" else 1))
        return target.replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        moment = parse_datetime(value)
        if moment is None and parse_date(value):
            moment = datetime.combine(parse_date(value), datetime.min.time())
    except ValueError:
        return None
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=dt_timezone.utc)


class InsightRelatedField(serializers.PrimaryKeyRelatedField):
    """Written as an insight id; read as the insight's basic representation."""

    def get_queryset(self):
        team = self.context["team"]
        # Any live insight of the project is found; another environment's is refused in validate().
        return Insight.objects.filter(team__project_id=team.project_id)

    def use_pk_only_optimization(self):
        return False

    def to_representation(self, value):
        return InsightBasicSerializer(value, context=self.context).data


class UserRelatedField(serializers.PrimaryKeyRelatedField):
    """Written as a user id; read as the user's basic representation."""

    def __init__(self, **kwargs):
        super().__init__(queryset=User.objects.filter(is_active=True), **kwargs)

    def use_pk_only_optimization(self):
        return False

    def to_representation(self, value):
        return UserBasicSerializer(value).data


class ThresholdSerializer(serializers.ModelSerializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=255, help_text="Optional name for the threshold.")
    configuration = ThresholdConfigurationField(
        help_text="`type` (`absolute`, or `percentage` where 0.2 means 20%) and optional `bounds` {`lower`, `upper`}."
    )

    class Meta:
        model = Threshold
        fields = ["id", "created_at", "name", "configuration"]
        read_only_fields = ["id", "created_at"]


class AlertCheckSerializer(serializers.ModelSerializer):
    targets_notified = serializers.SerializerMethodField(help_text="Whether anyone was notified of this check.")
    triggered_metadata = serializers.JSONField(
        read_only=True, allow_null=True,
        help_text="Which value breached when there are several: `breakdown_value` (trends, funnels) or the SQL row's `label`.",
    )

    class Meta:
        model = AlertCheck
        fields = ["id", "created_at", "calculated_value", "state", "targets_notified", "triggered_metadata"]
        read_only_fields = fields

    def get_targets_notified(self, check) -> bool:
        return check.targets_notified != {}


class AlertSerializer(serializers.ModelSerializer):
    created_by = UserBasicSerializer(read_only=True)
    insight = InsightRelatedField(help_text="Id of the insight to watch; responses carry the insight's basic representation.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=255)
    subscribed_users = UserRelatedField(
        many=True, help_text="Ids of the users to notify; responses carry each user's basic representation."
    )
    threshold = ThresholdSerializer(
        allow_null=True,  # read as null once detached; written as an object (see validate_threshold)
        help_text="The bounds to compare the value with. On update, `{}` detaches the threshold and an object "
        "updates the alert's threshold (or creates one).",
    )
    condition = ConditionField(required=False, allow_null=True, help_text="How the value is derived: `absolute_value`, `relative_increase` or `relative_decrease`.")
    config = AlertConfigField(
        required=False, allow_null=True,
        help_text="Per-insight-kind configuration, by `type`. `TrendsAlertConfig`: `series_index` and `check_ongoing_interval`. "
        "`FunnelsAlertConfig` (steps funnels, absolute_value only): `funnel_step` (null: the last step) and `metric` "
        "(`conversion_from_start` or `conversion_from_previous`), a percentage 0-100. `HogQLAlertConfig` (SQL insights): "
        "`column`, `evaluation` (`last_row`, `first_row`, `any_row`) and `label_column`.",
    )
    detector_config = DetectorConfigField(required=False, allow_null=True, default=None)
    checks = serializers.SerializerMethodField(
        help_text="Checks, newest first; only filled when retrieving one alert: the last 5 by default, `checks_limit` "
        "(max 500) and `checks_offset` page through them."
    )
    checks_total = serializers.SerializerMethodField(help_text="How many checks the alert has; only set when retrieving one alert.")
    calculation_interval = serializers.ChoiceField(choices=CalculationInterval.choices, required=False, help_text="How often the alert is checked.")
    snoozed_until = SnoozeUntilField(required=False, allow_null=True)
    skip_weekend = serializers.BooleanField(required=False, allow_null=True, help_text="Skip checks on Saturdays and Sundays (project timezone).")
    schedule_restriction = ScheduleRestrictionField(
        required=False, allow_null=True,
        help_text="Quiet hours: `blocked_windows` of `{start, end}` (HH:MM, project timezone, half-open, at least 30 minutes, "
        "at most 5; overlapping windows are merged when saved). Null disables.",
    )
    last_value = serializers.FloatField(read_only=True, allow_null=True, help_text="The value calculated by the latest check.")

    class Meta:
        model = AlertConfiguration
        fields = [
            "id",
            "created_by",
            "created_at",
            "insight",
            "name",
            "subscribed_users",
            "threshold",
            "condition",
            "state",
            "enabled",
            "last_notified_at",
            "last_checked_at",
            "next_check_at",
            "checks",
            "checks_total",
            "config",
            "detector_config",
            "calculation_interval",
            "snoozed_until",
            "skip_weekend",
            "schedule_restriction",
            "last_value",
        ]
        read_only_fields = ["id", "created_at", "state", "last_notified_at", "last_checked_at", "next_check_at"]

    @extend_schema_field(AlertCheckSerializer(many=True))
    def get_checks(self, alert) -> list:
        return AlertCheckSerializer(getattr(alert, "recent_checks", []), many=True).data

    def get_checks_total(self, alert) -> int | None:
        return getattr(alert, "checks_total", None)

    def validate_insight(self, insight):
        if alertable_query_kind(insight.query) is None:
            raise serializers.ValidationError("Alerts are not supported for this insight.")
        return insight

    def validate_threshold(self, threshold):
        if threshold is None:
            raise serializers.ValidationError(serializers.Field.default_error_messages["null"], code="null")
        return threshold

    def validate_subscribed_users(self, users):
        team = self.context["team"]
        member_ids = set(
            OrganizationMembership.objects.filter(organization_id=team.organization_id, user__in=users).values_list("user_id", flat=True)
        )
        if any(user.id not in member_ids for user in users):
            raise serializers.ValidationError("User does not belong to the same organization as the alert's team.")
        return users

    def validate(self, attrs):
        team, alert = self.context["team"], self.instance
        insight = attrs.get("insight") or alert.insight
        if insight.team_id != team.id:
            raise serializers.ValidationError({"insight": ["This insight does not belong to your team."]})
        if "threshold" in attrs:
            threshold_configuration = attrs["threshold"].get("configuration")
            if threshold_configuration is None and attrs["threshold"]:
                if not (alert and alert.threshold):
                    raise serializers.ValidationError({"threshold": {"configuration": ["This field is required."]}})
                threshold_configuration = alert.threshold.configuration  # only the name changes
        else:
            threshold_configuration = alert.threshold.configuration if alert and alert.threshold else None
        try:
            setup = validate_alert_setup(
                insight.query,
                attrs["condition"] if "condition" in attrs else alert.condition if alert else None,
                attrs["config"] if "config" in attrs else alert.config if alert else None,
                threshold_configuration,
            )
            if isinstance(setup.config, HogQLAlertConfig) and setup.config.column is not None:
                check_sql_column(team, setup.query, setup.config.column)
        except (AlertConfigError, EvaluationError) as error:
            raise serializers.ValidationError(str(error)) from None
        attrs.pop("detector_config", None)
        return attrs


class ThresholdWithAlertsSerializer(ThresholdSerializer):
    alerts = AlertSerializer(many=True, read_only=True)

    class Meta(ThresholdSerializer.Meta):
        fields = [*ThresholdSerializer.Meta.fields, "alerts"]
        read_only_fields = [*ThresholdSerializer.Meta.fields, "alerts"]
