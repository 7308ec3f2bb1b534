"""Celery app. Used when REDIS_URL is set; otherwise tasks run in an in-process executor."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "insights_api.settings")

app = Celery("insights_api")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
