from core.routers import OptionalSlashRouter, TeamNestedRouter

from .views import DashboardSharingViewSet, SharingConfigurationViewSet


class _SingleObjectRouter(OptionalSlashRouter):
    """An insight (or dashboard) has exactly one sharing configuration: the collection URL reads it (GET) and
    edits it (PATCH), and there is no detail URL."""

    routes = [
        route._replace(mapping={**route.mapping, "patch": "partial_update"}) if route.name == "{basename}-list" else route
        for route in OptionalSlashRouter.routes
        if route.name != "{basename}-detail"
    ]


class _SharingRouter(TeamNestedRouter):
    def __init__(self):
        self.router = _SingleObjectRouter()


router = _SharingRouter()
router.register(r"insights/(?P<insight_id>[^/.]+)/sharing", SharingConfigurationViewSet, basename="insight_sharing")
router.register(r"dashboards/(?P<dashboard_id>[^/.]+)/sharing", DashboardSharingViewSet, basename="dashboard_sharing")

urlpatterns = router.urls
