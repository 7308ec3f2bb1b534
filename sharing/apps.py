from django.apps import AppConfig


class SharingConfig(AppConfig):
    name = "sharing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from insights import signals

        from . import openapi  # noqa: F401  (registers the schema extensions)
        from .authentication import ShareTokenAccess

        signals.shared_access = ShareTokenAccess()
