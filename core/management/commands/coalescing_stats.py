import json

from django.core.management.base import BaseCommand

from core.coalescing import read_counters


class Command(BaseCommand):
    help = "Print query-coalescing counters (leaders, followers served a replay, fall-throughs)."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(read_counters()))
