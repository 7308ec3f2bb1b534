from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from insights import signals

        from . import openapi  # noqa: F401  (registers the schema extensions)
        from . import services

        signals.alerts_provider = services.alerts_for_insights
        signals.insight_soft_deleted.connect(lambda sender, insight, **kw: services.on_insight_soft_deleted(insight), weak=False)
        signals.insight_query_changed.connect(lambda sender, insight, **kw: services.on_insight_query_changed(insight), weak=False)
