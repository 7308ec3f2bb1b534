"""Idempotently create a user, organization, project and team; optionally a personal API key."""
import json

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import OrganizationMembership, Team, User
from accounts.services import create_organization, create_personal_api_key


class Command(BaseCommand):
    help = "Create (or find) a user with an organization, project and team, and optionally a personal API key."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--organization", default="Default organization")
        parser.add_argument("--new-api-key", action="store_true", help="create and print a new personal API key")
        parser.add_argument("--scopes", default="*", help="comma-separated scopes for the new key ('*' = all)")
        parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
        parser.add_argument("--banner", default="", help="server URL: print a how-to-connect banner")

    @transaction.atomic
    def handle(self, *args, **options):
        email = User.objects.normalize_email(options["email"])
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            user = User.objects.create_user(email=email, password=options["password"], first_name=email.split("@")[0])
        elif not user.check_password(options["password"]):
            user.set_password(options["password"])
            user.save(update_fields=["password"])

        membership = (
            OrganizationMembership.objects.filter(user=user, organization__name=options["organization"])
            .select_related("organization")
            .order_by("joined_at")
            .first()
        )
        if membership:
            organization = membership.organization
            team = Team.objects.filter(organization=organization).order_by("id").first()
        else:
            organization, team = create_organization(options["organization"], owner=user)

        raw_key = None
        if options["new_api_key"]:
            scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
            _, raw_key = create_personal_api_key(user, label="bootstrap", scopes=scopes)

        result = {
            "organization_id": str(organization.id),
            "project_id": team.project_id,
            "team_id": team.id,
            "email": user.email,
            "personal_api_key": raw_key,
            "api_token": team.api_token,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
        elif options["banner"]:
            self._banner(options["banner"], result, options["password"])
        else:
            for name, value in result.items():
                self.stdout.write(f"{name}: {value}")

    def _banner(self, url, result, password):
        key = result["personal_api_key"] or "(run with --new-api-key)"
        lines = [
            "",
            "=" * 72,
            f"  PostHog-compatible Insights API: {url}/api/",
            f"  Swagger UI:        {url}/api/schema/swagger-ui/",
            f"  Browsable API:     {url}/api-auth/login/  ({result['email']} / {password})",
            f"  Personal API key:  {key}",
            f"  Project id:        {result['project_id']}   capture token: {result['api_token']}",
            "",
            f"  curl -H 'Authorization: Bearer {key}' {url}/api/projects/{result['project_id']}/insights/",
            "=" * 72,
            "",
        ]
        self.stdout.write("\n".join(lines))
