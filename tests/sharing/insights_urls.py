"""The real insights viewset with exactly the additions that sharing/authentication.py's
integration note asks for, so the contract is tested before (and after) it is wired in."""
from django.urls import include, path

from core.routers import TeamNestedRouter
from insights.views import InsightViewSet
from sharing.authentication import SHARING_AUTHENTICATION_CLASSES, SharingTokenPermission, is_sharing_request, shared_insight_ids


class SharedInsightViewSet(InsightViewSet):
    sharing_enabled_actions = ["list", "retrieve"]

    def get_authenticators(self):
        return [cls() for cls in SHARING_AUTHENTICATION_CLASSES] + super().get_authenticators()

    def get_permissions(self):
        if is_sharing_request(self.request):
            return [SharingTokenPermission()]
        return super().get_permissions()

    def get_queryset(self):
        queryset = super().get_queryset()
        ids = shared_insight_ids(self.request)
        return queryset if ids is None else queryset.filter(id__in=ids)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if is_sharing_request(self.request):
            context["is_shared"] = True
        return context


router = TeamNestedRouter()
router.register("insights", SharedInsightViewSet, basename="shared_insights")

urlpatterns = [path("api/", include(router.urls)), path("", include("insights_api.urls"))]
