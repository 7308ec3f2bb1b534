from django.apps import AppConfig


class InsightVariablesConfig(AppConfig):
    name = "insight_variables"
    default_auto_field = "django.db.models.BigAutoField"
