from core.routers import TeamNestedRouter

from .views import InsightVariableViewSet

router = TeamNestedRouter()
router.register("insight_variables", InsightVariableViewSet, basename="insight_variables")

urlpatterns = router.urls
