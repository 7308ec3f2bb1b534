"""Example insights over the demo data, so a new installation shows results at once."""
from django.core.management.base import BaseCommand, CommandError

from accounts.models import OrganizationMembership, Team
from actions.models import Action
from actions.services import create_action
from cohorts.services import COHORT_EXAMPLE, example_cohort
from insights.models import Insight
from insights.services import create_insight


def _viz(source: dict) -> dict:
    return {"kind": "InsightVizNode", "source": source}


EXAMPLES = [
    (
        "Daily pageviews by browser",
        _viz({
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview", "math": "total"}],
            "interval": "day",
            "dateRange": {"date_from": "-30d"},
            "breakdownFilter": {"breakdown": "$browser", "breakdown_type": "event"},
        }),
    ),
    (
        "Weekly active users",
        _viz({
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
            "interval": "week",
            "dateRange": {"date_from": "-90d"},
        }),
    ),
    (
        "Revenue (last 30 days)",
        _viz({
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "revenue"}],
            "dateRange": {"date_from": "-30d"},
            "trendsFilter": {"display": "BoldNumber"},
        }),
    ),
    (
        "Sign-up to purchase funnel",
        _viz({
            "kind": "FunnelsQuery",
            "series": [
                {"kind": "EventsNode", "event": "$pageview"},
                {"kind": "EventsNode", "event": "signed up"},
                {"kind": "EventsNode", "event": "purchase"},
            ],
            "dateRange": {"date_from": "-30d"},
            "funnelsFilter": {"funnelWindowInterval": 14, "funnelWindowIntervalUnit": "day"},
        }),
    ),
    (
        "Weekly retention",
        _viz({
            "kind": "RetentionQuery",
            "dateRange": {"date_from": "-8w"},
            "retentionFilter": {
                "period": "Week",
                "totalIntervals": 8,
                "targetEntity": {"id": "$pageview", "type": "events"},
                "returningEntity": {"id": "$pageview", "type": "events"},
            },
        }),
    ),
    (
        "User lifecycle",
        _viz({
            "kind": "LifecycleQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview"}],
            "interval": "week",
            "dateRange": {"date_from": "-8w"},
        }),
    ),
    (
        "Companies signing up (weekly)",
        _viz({
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "signed up", "math": "unique_group", "math_group_type_index": 0}],
            "interval": "week",
            "dateRange": {"date_from": "-90d"},
            "breakdownFilter": {"breakdown_type": "group", "breakdown": "industry", "breakdown_group_type_index": 0},
        }),
    ),
    (
        "Average session duration by entry page",
        _viz({
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "$pageview", "math": "avg", "math_property": "$session_duration",
                        "math_property_type": "session_properties"}],
            "dateRange": {"date_from": "-30d"},
            "breakdownFilter": {"breakdown_type": "session", "breakdown": "$entry_pathname"},
            "trendsFilter": {"display": "ActionsBarValue"},
        }),
    ),
    (
        "Purchases by revenue (histogram)",
        _viz({
            "kind": "TrendsQuery",
            "series": [{"kind": "EventsNode", "event": "purchase"}],
            "dateRange": {"date_from": "-30d"},
            "breakdownFilter": {"breakdown": "revenue", "breakdown_type": "event", "breakdown_histogram_bin_count": 5},
            "trendsFilter": {"display": "ActionsBarValue"},
        }),
    ),
    (
        "Sign-up funnel, pricing page optional",
        _viz({
            "kind": "FunnelsQuery",
            "series": [
                {"kind": "EventsNode", "event": "$pageview"},
                {"kind": "EventsNode", "event": "$pageview", "optionalInFunnel": True, "custom_name": "Saw pricing",
                 "properties": [{"key": "$pathname", "value": "/pricing", "operator": "exact", "type": "event"}]},
                {"kind": "EventsNode", "event": "signed up"},
            ],
            "dateRange": {"date_from": "-30d"},
        }),
    ),
    (
        "Paths after signing up",
        _viz({
            "kind": "PathsQuery",
            "dateRange": {"date_from": "-30d"},
            "pathsFilter": {"includeEventTypes": ["$pageview"], "stepLimit": 5},
            "funnelPathsFilter": {
                "funnelPathType": "funnel_path_after_step",
                "funnelStep": 2,
                "funnelSource": {
                    "kind": "FunnelsQuery",
                    "series": [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "signed up"}],
                    "dateRange": {"date_from": "-30d"},
                },
            },
        }),
    ),
    (
        "Top pages (SQL)",
        {
            "kind": "DataVisualizationNode",
            "source": {
                "kind": "HogQLQuery",
                "query": "SELECT properties.$pathname AS page, count() AS views FROM events WHERE event = '$pageview' GROUP BY page ORDER BY views DESC LIMIT 10",
            },
        },
    ),
]

# An action (pageviews of the pricing page, or a sign-up) and an insight counting it.
EXAMPLE_ACTION = {
    "name": "Viewed pricing or signed up",
    "description": "Example action: a pageview whose URL contains /pricing, or a sign-up.",
    "steps_json": [{"event": "$pageview", "url": "/pricing", "url_matching": "contains"}, {"event": "signed up"}],
}
ACTION_INSIGHT = "Pricing interest (action)"


def _action_insight(action: Action) -> dict:
    return _viz({
        "kind": "TrendsQuery",
        "series": [{"kind": "ActionsNode", "id": action.id, "name": action.name, "math": "dau"}],
        "interval": "day",
        "dateRange": {"date_from": "-30d"},
    })


class Command(BaseCommand):
    help = "Create example insights for a team (skips the ones it already has)."

    def add_arguments(self, parser):
        parser.add_argument("--team", type=int, help="team id; default: the first team")

    def handle(self, *args, **options):
        team = Team.objects.filter(id=options["team"]).first() if options["team"] else Team.objects.order_by("id").first()
        if team is None:
            raise CommandError("No such team.")
        owner = OrganizationMembership.objects.filter(organization=team.organization).order_by("level", "joined_at").select_related("user").last()
        existing = set(Insight.objects.filter(team=team).values_list("name", flat=True))
        created = 0
        for name, query in EXAMPLES:
            if name in existing:
                continue
            create_insight(team=team, user=owner.user if owner else None, data={"name": name, "query": query}, dashboards=None, tags=["example"])
            created += 1
        if COHORT_EXAMPLE[1] not in existing:
            cohort = example_cohort(team=team, user=owner.user if owner else None)
            name, query = COHORT_EXAMPLE[1], _cohort_breakdown_example(cohort.id)
            create_insight(team=team, user=owner.user if owner else None, data={"name": name, "query": query}, dashboards=None, tags=["example"])
            created += 1
        if ACTION_INSIGHT not in existing:
            user = owner.user if owner else None
            action = Action.objects.filter(team=team, name=EXAMPLE_ACTION["name"], deleted=False).first() or create_action(
                team=team, user=user, data=dict(EXAMPLE_ACTION))
            create_insight(team=team, user=user, data={"name": ACTION_INSIGHT, "query": _action_insight(action)}, dashboards=None,
                           tags=["example"])
            created += 1
        self.stdout.write(f"{created} example insight(s) created for team {team.id}.")


def _cohort_breakdown_example(cohort_id: int) -> dict:
    return _viz({
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
        "interval": "week",
        "dateRange": {"date_from": "-60d"},
        "breakdownFilter": {"breakdown_type": "cohort", "breakdown": [cohort_id, "all"]},
    })
