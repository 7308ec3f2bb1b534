"""Capture and posthog-js endpoints at the root, with and without the trailing slash, as PostHog serves them."""
from django.urls import re_path

from .browser_views import FlagsView, RemoteConfigScriptView, RemoteConfigView
from .views import capture_view

urlpatterns = [
    re_path(r"^batch/?$", capture_view("capture_batch_create"), name="capture-batch"),
    re_path(r"^capture/?$", capture_view("capture_capture_create"), name="capture-capture"),
    re_path(r"^e/?$", capture_view("capture_e_create"), name="capture-e"),
    re_path(r"^i/v0/e/?$", capture_view("capture_i_v0_e_create"), name="capture-i-v0-e"),
    # What posthog-js asks on every page load besides capture.
    re_path(r"^flags/?$", FlagsView.as_view(), name="flags"),
    re_path(r"^array/(?P<token>[^/]*)/config\.js$", RemoteConfigScriptView.as_view(), name="remote-config-js"),
    re_path(r"^array/(?P<token>[^/]*)/config/?$", RemoteConfigView.as_view(), name="remote-config"),
]
