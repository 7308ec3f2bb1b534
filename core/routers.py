"""Team-nested routing: one registration serves /api/projects/<id>/... and /api/environments/<id>/..."""
from rest_framework.routers import DefaultRouter, SimpleRouter


class OptionalSlashRouter(SimpleRouter):
    """PostHog's routes accept paths with and without the trailing slash."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


class TeamNestedRouter:
    FAMILIES = (("projects", "project"), ("environments", "environment"))

    def __init__(self):
        self.router = OptionalSlashRouter()

    def register(self, prefix: str, viewset, basename: str):
        """`prefix` is relative to the team, e.g. "insights" or r"insights/(?P<insight_id>[^/.]+)/sharing"."""
        for family, singular in self.FAMILIES:
            self.router.register(rf"{family}/(?P<project_id>[^/.]+)/{prefix}", viewset, basename=f"{singular}_{basename}")

    @property
    def urls(self):
        return self.router.urls


class RootRouter(DefaultRouter):
    include_format_suffixes = False

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
