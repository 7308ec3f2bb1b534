"""How share viewers authenticate, for the OpenAPI schema."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SharingAccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "sharing.authentication.SharingAccessTokenAuthentication"
    name = "SharingAccessToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "query", "name": "sharing_access_token", "description": "Access token of a public share (list and retrieve only)."}


class SharingPasswordProtectedScheme(OpenApiAuthenticationExtension):
    target_class = "sharing.authentication.SharingPasswordProtectedAuthentication"
    name = "SharingJWT"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "Share token issued by unlocking a password-protected share."}
