from rest_framework import serializers

from .models import Organization, OrganizationMembership, PersonalAPIKey, Project, Team, User


class UserBasicSerializer(serializers.ModelSerializer):
    """PostHog's UserBasic shape, nested in insights and activity entries."""

    hedgehog_config = serializers.SerializerMethodField()
    role_at_organization = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "uuid", "distinct_id", "first_name", "last_name", "email", "is_email_verified", "hedgehog_config", "role_at_organization"]
        read_only_fields = fields

    def get_hedgehog_config(self, user) -> dict | None:
        return None

    def get_role_at_organization(self, user) -> str | None:
        return None


class TeamBasicSerializer(serializers.ModelSerializer):
    project_id = serializers.IntegerField(read_only=True)
    organization = serializers.UUIDField(source="organization_id", read_only=True)

    class Meta:
        model = Team
        fields = ["id", "uuid", "organization", "project_id", "api_token", "name", "timezone"]
        read_only_fields = fields


class TeamSerializer(TeamBasicSerializer):
    class Meta(TeamBasicSerializer.Meta):
        fields = TeamBasicSerializer.Meta.fields + ["test_account_filters", "created_at"]
        read_only_fields = fields


class ProjectSerializer(serializers.ModelSerializer):
    """A project, with the timezone and capture token of its primary environment."""

    organization = serializers.UUIDField(source="organization_id", read_only=True)
    timezone = serializers.SerializerMethodField()
    api_token = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = ["id", "organization", "name", "timezone", "api_token", "created_at"]
        read_only_fields = fields

    @staticmethod
    def _primary_team(project) -> Team | None:
        teams = list(project.teams.all())  # prefetched
        return next((t for t in teams if t.id == project.id), teams[0] if teams else None)

    def get_timezone(self, project) -> str:
        team = self._primary_team(project)
        return team.timezone if team else "UTC"

    def get_api_token(self, project) -> str | None:
        team = self._primary_team(project)
        return team.api_token if team else None


class OrganizationBasicSerializer(serializers.ModelSerializer):
    slug = serializers.SerializerMethodField()
    membership_level = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "membership_level", "members_can_use_personal_api_keys", "allow_publicly_shared_resources"]
        read_only_fields = fields

    def get_slug(self, organization) -> str:
        return f"{organization.name.lower().replace(' ', '-')}-{str(organization.id)[:4]}"

    def get_membership_level(self, organization) -> int | None:
        return self.context.get("membership_levels", {}).get(organization.id)


class MeSerializer(serializers.ModelSerializer):
    organization = serializers.SerializerMethodField()
    organizations = serializers.SerializerMethodField()
    team = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "uuid", "distinct_id", "first_name", "last_name", "email", "is_email_verified", "is_staff", "date_joined", "organization", "organizations", "team"]
        read_only_fields = fields

    def get_organization(self, user) -> dict | None:
        if user.current_organization is None:
            return None
        return OrganizationBasicSerializer(user.current_organization, context=self.context).data

    def get_organizations(self, user) -> list[dict]:
        return OrganizationBasicSerializer(self.context["organizations"], many=True, context=self.context).data

    def get_team(self, user) -> dict | None:
        return TeamBasicSerializer(user.current_team).data if user.current_team else None


class PersonalAPIKeySerializer(serializers.ModelSerializer):
    # Not `get_value`: that name is a Field method serializers rely on.
    value = serializers.SerializerMethodField(method_name="get_key_value", help_text="The key itself: only in the response that created or rolled it.")
    user_id = serializers.IntegerField(read_only=True)
    scopes = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=100)
    scoped_teams = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=1000)
    scoped_organizations = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=1000)

    class Meta:
        model = PersonalAPIKey
        fields = ["id", "label", "value", "mask_value", "created_at", "last_used_at", "last_rolled_at", "user_id", "scopes", "scoped_teams", "scoped_organizations"]
        read_only_fields = ["id", "value", "mask_value", "created_at", "last_used_at", "last_rolled_at", "user_id"]

    def get_key_value(self, key) -> str | None:
        # The raw value exists only in the response to its creation (or roll).
        return getattr(key, "raw_value", None)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # Always arrays on the wire, as PostHog answers (clients validate them as such); a legacy
        # key without scopes is unrestricted, which PostHog shows as ["*"].
        data["scopes"] = data["scopes"] or ["*"]
        data["scoped_teams"] = data["scoped_teams"] or []
        data["scoped_organizations"] = data["scoped_organizations"] or []
        return data

    def validate_scopes(self, scopes):
        for scope in scopes or []:
            if scope == "*":
                continue
            obj, _, level = scope.partition(":")
            if not obj or level not in ("read", "write"):
                raise serializers.ValidationError(f"Invalid scope: {scope}")
        return scopes

    def validate_scoped_teams(self, team_ids):
        if not team_ids:
            return team_ids
        user = self.context["request"].user
        allowed = set(Team.objects.filter(organization__memberships__user=user, id__in=team_ids).values_list("id", flat=True))
        if set(team_ids) - allowed:
            raise serializers.ValidationError("You must be a member of all teams that you are scoping the key to.")
        return team_ids

    def validate_scoped_organizations(self, organization_ids):
        if not organization_ids:
            return organization_ids
        user = self.context["request"].user
        ids = [str(o) for o in organization_ids]
        allowed = {str(o) for o in OrganizationMembership.objects.filter(user=user, organization_id__in=ids).values_list("organization_id", flat=True)}
        if set(ids) - allowed:
            raise serializers.ValidationError("You must be a member of all organizations that you are scoping the key to.")
        return ids
