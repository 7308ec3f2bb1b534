from core.routers import TeamNestedRouter

from .views import ExportedAssetViewSet

router = TeamNestedRouter()
router.register("exports", ExportedAssetViewSet, basename="exports")

urlpatterns = router.urls
