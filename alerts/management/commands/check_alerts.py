"""Check every alert that is due (run it from cron in the embedded mode, e.g. every 5 minutes)."""
import uuid

from django.core.management.base import BaseCommand, CommandError

from alerts.checks import check_alerts, delete_old_checks, due_alert_ids


class Command(BaseCommand):
    help = "Check the alerts that are due, record each check and notify subscribers of firing alerts."

    def add_arguments(self, parser):
        parser.add_argument(
            "--alert",
            action="append",
            default=[],
            metavar="ID",
            help="Check this alert now even if it is not due (repeatable). Disabled alerts are never checked.",
        )

    def handle(self, *args, **options):
        try:
            forced = [uuid.UUID(value) for value in options["alert"]]
        except ValueError as error:
            raise CommandError(f"--alert takes alert ids (UUIDs): {error}") from None
        summary = check_alerts(forced, force=True) if forced else check_alerts(due_alert_ids())
        deleted = delete_old_checks()
        self.stdout.write(
            f"Checked {summary.checked} alert(s): {summary.firing} firing, {summary.not_firing} not firing, "
            f"{summary.errored} errored; {summary.skipped} skipped. Deleted {deleted} old check(s)."
        )
