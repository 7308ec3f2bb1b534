"""Recalculate the dynamic cohorts that are due: run from cron when REDIS_URL is unset (with Redis,
Celery beat runs it)."""
from django.core.management.base import BaseCommand

from cohorts.calculation import calculate_due_cohorts


class Command(BaseCommand):
    help = "Recalculate the dynamic cohorts whose membership is older than 15 minutes."

    def handle(self, *args, **options):
        count = calculate_due_cohorts()
        self.stdout.write(f"Recalculated {count} cohort(s).")
