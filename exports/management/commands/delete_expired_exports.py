from django.core.management.base import BaseCommand

from exports.services import delete_expired_exports


class Command(BaseCommand):
    help = "Delete exported files whose expires_after has passed (Celery beat does this hourly when REDIS_URL is set)."

    def handle(self, *args, **options):
        self.stdout.write(f"Deleted {delete_expired_exports()} expired exports.")
