from core.routers import TeamNestedRouter

from .views import AlertViewSet, ThresholdViewSet

router = TeamNestedRouter()
router.register("alerts", AlertViewSet, basename="alerts")
router.register(r"insights/(?P<insight_id>[^/.]+)/thresholds", ThresholdViewSet, basename="insight_thresholds")

urlpatterns = router.urls
