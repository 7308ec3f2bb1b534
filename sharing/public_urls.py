"""Public pages of shared insights and dashboards, at the site root as in PostHog."""
from django.urls import re_path

from .public_views import shared_insight

# The token may carry an extension (`.json`, `.png`), stripped for the lookup.
urlpatterns = [
    re_path(r"^shared/(?P<token>[^/]+)/?$", shared_insight, name="shared_insight"),
    re_path(r"^embedded/(?P<token>[^/]+)/?$", shared_insight, {"embedded": True}, name="embedded_insight"),
    re_path(r"^shared_dashboard/(?P<token>[^/]+)/?$", shared_insight, name="shared_dashboard"),  # PostHog's legacy path
]
