from core.routers import TeamNestedRouter

from .views import QueryViewSet

router = TeamNestedRouter()
router.register("query", QueryViewSet, basename="query")

urlpatterns = router.urls
