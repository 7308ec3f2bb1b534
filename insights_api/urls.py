from core.views import QueryCoalescingStatsView
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("", RedirectView.as_view(url="/api/", permanent=False)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/schema/swagger-ui/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/schema/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("api-auth/", include("rest_framework.urls")),
    path("api/instance_status/query_coalescing/", QueryCoalescingStatsView.as_view(), name="query-coalescing-stats"),
    # Each app owns its routes; team-nested ones use core.routers.TeamNestedRouter.
    path("api/", include("insights.urls")),
    path("api/", include("queries.urls")),
    path("api/", include("sharing.urls")),
    path("api/", include("alerts.urls")),
    path("api/", include("accounts.urls")),
    path("api/", include("insight_variables.urls")),
    path("api/", include("exports.urls")),
    path("api/", include("cohorts.urls")),
    path("api/", include("actions.urls")),
    path("api/", include("groups.urls")),
    path("", include("events.urls")),
    path("", include("sharing.public_urls")),
]

handler404 = "core.views.not_found"
handler500 = "core.views.server_error"
