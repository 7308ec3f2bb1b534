"""python manage.py generate_demo_data --team ID --events N --days D [--seed S]"""
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from accounts.models import Team
from events.demo_data import generate_demo_data
from events.store import team_has_events

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Insert realistic demo events (pageviews, sign ups, purchases) and their persons for a team."

    def add_arguments(self, parser):
        parser.add_argument("--team", type=int, help="team (environment) id; default: the first team")
        parser.add_argument("--events", type=int, default=10_000, help="number of events (default 10000)")
        parser.add_argument("--days", type=int, default=30, help="spread over this many days up to now (default 30)")
        parser.add_argument("--seed", type=int, help="random seed: the same seed gives the same data")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when the team already has events")

    def handle(self, *args, **options):
        if options["events"] < 0 or options["days"] < 1:
            raise CommandError("--events must be >= 0 and --days >= 1.")
        teams = Team.objects.order_by("id")
        team = teams.filter(id=options["team"]).first() if options["team"] is not None else teams.first()
        if team is None:
            raise CommandError(f"Team {options['team']} not found." if options["team"] is not None else "No team exists yet.")
        if options["if_empty"] and team_has_events(team.id):
            self.stdout.write(f"Team {team.id} already has events; no demo data added.")
            return
        started = time.monotonic()
        show_progress = options["verbosity"] > 0
        try:
            summary = generate_demo_data(
                team,
                events=options["events"],
                days=options["days"],
                seed=options["seed"],
                progress=self._progress if show_progress else None,
            )
        except IntegrityError:
            raise CommandError(f"Team {team.id} already has these demo events (same --seed); use another seed.") from None
        if show_progress:
            self.stderr.write("")
        counts = ", ".join(f"{name}: {count}" for name, count in sorted(summary.event_counts.items()))
        self.stdout.write(
            f"Team {team.id}: {summary.events} events ({counts}) and {summary.persons} persons "
            f"in {time.monotonic() - started:.1f}s."
        )

    def _progress(self, done: int, total: int) -> None:
        filled = BAR_WIDTH * done // total if total else BAR_WIDTH
        percent = 100 * done // total if total else 100
        self.stderr.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:3d}% {done}/{total} events", ending="")
        self.stderr.flush()
