from core.routers import TeamNestedRouter

from .views import GroupTypeViewSet, GroupViewSet

router = TeamNestedRouter()
router.register("groups_types", GroupTypeViewSet, basename="group_types")
router.register("groups", GroupViewSet, basename="groups")

urlpatterns = router.urls
