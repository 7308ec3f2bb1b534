from core.routers import TeamNestedRouter

from .views import CohortViewSet

router = TeamNestedRouter()
router.register("cohorts", CohortViewSet, basename="cohorts")

urlpatterns = router.urls
