from core.routers import TeamNestedRouter

from .dashboards.collaborators import DashboardCollaboratorViewSet
from .dashboards.views import DashboardViewSet
from .views import InsightViewSet

router = TeamNestedRouter()
router.register("insights", InsightViewSet, basename="insights")
router.register("dashboards", DashboardViewSet, basename="dashboards")
router.register(r"dashboards/(?P<dashboard_id>[^/.]+)/collaborators", DashboardCollaboratorViewSet, basename="dashboard_collaborators")

urlpatterns = router.urls
