"""drf-spectacular customisation: PostHog's operation ids and tags, per-operation key scopes, and
share-token schemes only on the operations share viewers may call."""
from types import SimpleNamespace

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter

from accounts.permissions import required_scopes_for

SHARING_SCHEMES = {"SharingAccessToken", "SharingJWT"}


class PersonalAPIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.PersonalAPIKeyAuthentication"
    name = "PersonalAPIKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}


PROJECT_ID_PARAMETER = OpenApiParameter(
    "project_id",
    str,
    OpenApiParameter.PATH,
    description="Project ID of the project you're trying to access. To find the ID of the project, make a call to /api/projects/.",
)


class AutoSchema(SpectacularAutoSchema):
    def get_operation_id(self):
        # PostHog names /api/projects/... operations without the family prefix
        # (insights_list) and /api/environments/... with it (environments_insights_list).
        operation_id = super().get_operation_id()
        return operation_id.removeprefix("projects_") if operation_id.startswith("projects_") and "{project_id}" in self.path else operation_id

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if "{project_id}" in self.path and not any(getattr(p, "name", None) == "project_id" for p in parameters):
            parameters.append(PROJECT_ID_PARAMETER)
        return parameters

    def get_auth(self):
        auth = super().get_auth()
        if getattr(self.view, "action", None) not in getattr(self.view, "sharing_enabled_actions", ()):
            # Share tokens are read-only: writes and other actions never accept them.
            auth = [entry for entry in auth if not SHARING_SCHEMES & set(entry)]
        scopes = required_scopes_for(self.view, SimpleNamespace(method=self.method))
        if not scopes:
            return [entry for entry in auth if "PersonalAPIKeyAuth" not in entry]
        return [{"PersonalAPIKeyAuth": scopes} if "PersonalAPIKeyAuth" in entry else entry for entry in auth]


def posthog_tags(result, generator, request, public):
    """PostHog's tags: project-nested operations by resource (`insights`), environment-nested ones
    `environments`, whatever a view declares."""
    for path, item in result.get("paths", {}).items():
        parts = path.strip("/").split("/")
        if len(parts) > 3 and parts[0] == "api" and parts[2] == "{project_id}" and parts[1] in ("projects", "environments"):
            tag = parts[3] if parts[1] == "projects" else "environments"
            for operation in item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    operation["tags"] = [tag]
    return result
