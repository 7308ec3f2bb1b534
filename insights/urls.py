from core.routers import TeamNestedRouter

from .views import DashboardViewSet, InsightViewSet

router = TeamNestedRouter()
router.register("insights", InsightViewSet, basename="insights")
router.register("dashboards", DashboardViewSet, basename="dashboards")

urlpatterns = router.urls
