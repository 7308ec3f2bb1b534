from core.routers import TeamNestedRouter

from .views import ActionViewSet

router = TeamNestedRouter()
router.register("actions", ActionViewSet, basename="actions")

urlpatterns = router.urls
