from django.urls import re_path

from core.routers import RootRouter

from .views import EnvironmentViewSet, PersonalAPIKeyViewSet, ProjectViewSet, UserViewSet

router = RootRouter()
router.register("users", UserViewSet, basename="users")
router.register("personal_api_keys", PersonalAPIKeyViewSet, basename="personal_api_keys")
router.register("projects", ProjectViewSet, basename="projects")

urlpatterns = router.urls + [
    re_path(r"^environments/(?P<project_id>[^/.]+)/?$", EnvironmentViewSet.as_view({"get": "retrieve"}), name="environments-detail"),
]
