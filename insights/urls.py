from core.routers import TeamNestedRouter

from .dashboards.views import DashboardViewSet
from .views import InsightViewSet

router = TeamNestedRouter()
router.register("insights", InsightViewSet, basename="insights")
router.register("dashboards", DashboardViewSet, basename="dashboards")

urlpatterns = router.urls
