"""drf-spectacular customisation: PostHog's operation ids and per-operation key scopes."""
from types import SimpleNamespace

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from accounts.permissions import required_scopes_for


class PersonalAPIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.PersonalAPIKeyAuthentication"
    name = "PersonalAPIKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}


class AutoSchema(SpectacularAutoSchema):
    def get_operation_id(self):
        # PostHog names /api/projects/... operations without the family prefix
        # (insights_list) and /api/environments/... with it (environments_insights_list).
        operation_id = super().get_operation_id()
        return operation_id.removeprefix("projects_") if operation_id.startswith("projects_") and "{project_id}" in self.path else operation_id

    def get_auth(self):
        auth = super().get_auth()
        scopes = required_scopes_for(self.view, SimpleNamespace(method=self.method))
        if not scopes:
            return [entry for entry in auth if "PersonalAPIKeyAuth" not in entry]
        return [{"PersonalAPIKeyAuth": scopes} if "PersonalAPIKeyAuth" in entry else entry for entry in auth]
