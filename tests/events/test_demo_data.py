"""Demo data: realistic, consistent with ingestion's rules, deterministic with a seed."""
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, OuterRef, Subquery

from events.demo_data import generate_demo_data
from events.models import Event, Person, PersonDistinctId
from tests.factories import make_team

from .helpers import T0

pytestmark = pytest.mark.django_db


def story(team):
    return list(
        Event.objects.filter(team=team).order_by("timestamp", "distinct_id", "event").values_list("event", "distinct_id", "timestamp", "properties", "session_id")
    )


def test_generates_exactly_n_events_with_consistent_persons(team):
    summary = generate_demo_data(team, events=3000, days=14, seed=7, end=T0)
    events = Event.objects.filter(team=team)
    assert events.count() == summary.events == 3000
    assert Person.objects.filter(team=team).count() == summary.persons > 50
    assert sum(summary.event_counts.values()) == 3000
    assert {"$pageview", "$identify", "signed up", "purchase"} <= set(summary.event_counts)
    assert not events.filter(person__isnull=True).exists()
    assert not events.filter(timestamp__gte=T0).exists()
    assert not events.filter(timestamp__lt=T0 - timedelta(days=14)).exists()
    # every person was created at its first event, and every event's distinct id maps to its person
    first_event = Event.objects.filter(person=OuterRef("pk")).order_by("timestamp").values("timestamp")[:1]
    assert not Person.objects.filter(team=team).exclude(created_at=Subquery(first_event)).exists()
    mapped = PersonDistinctId.objects.filter(team=team, distinct_id=OuterRef("distinct_id")).values("person_id")[:1]
    pairs = events.annotate(mapped=Subquery(mapped)).values_list("person_id", "mapped")
    assert all(person_id == mapped_id for person_id, mapped_id in pairs)


def test_events_look_like_a_product_site(team):
    generate_demo_data(team, events=2000, days=7, seed=3, end=T0)
    pageview = Event.objects.filter(team=team, event="$pageview").first()
    assert {"$current_url", "$pathname", "$browser", "$os", "$device_type", "$geoip_country_code", "$session_id", "$referring_domain"} <= set(pageview.properties)
    assert pageview.session_id == pageview.properties["$session_id"]
    purchase = Event.objects.filter(team=team, event="purchase").first()
    assert purchase.properties["revenue"] > 0 and purchase.properties["plan"] in {"pro", "enterprise"}
    identify = Event.objects.filter(team=team, event="$identify").first()
    person = identify.person
    assert person.is_identified
    assert sorted(person.distinct_ids.values_list("distinct_id", flat=True)) == sorted([identify.distinct_id, identify.properties["$anon_distinct_id"]])
    assert {"email", "name", "plan", "$initial_browser", "$geoip_country_code"} <= set(person.properties)
    browsers = dict(Event.objects.filter(team=team).values_list("properties__$browser").annotate(n=Count("id")))
    assert len(browsers) >= 4 and max(browsers, key=browsers.get) == "Chrome"
    assert Event.objects.filter(team=team).values("session_id").distinct().count() > 100


def test_same_seed_same_data_other_seed_other_data(team):
    other, third = make_team(), make_team()
    generate_demo_data(team, events=500, days=5, seed=11, end=T0)
    generate_demo_data(other, events=500, days=5, seed=11, end=T0)
    generate_demo_data(third, events=500, days=5, seed=12, end=T0)

    def without_team_ids(rows):
        # user ids embed the team id; everything else is identical
        return [(e, d.rsplit("-", 1)[-1] if d.startswith("user-") else d, t, p, s) for e, d, t, p, s in rows]

    assert without_team_ids(story(team)) == without_team_ids(story(other))
    assert without_team_ids(story(team)) != without_team_ids(story(third))


def test_command_with_progress_bar_and_if_empty(team):
    out, err = StringIO(), StringIO()
    call_command("generate_demo_data", team=team.id, events=1200, days=3, seed=1, stdout=out, stderr=err)
    assert Event.objects.filter(team=team).count() == 1200
    assert "100% 1200/1200 events" in err.getvalue()
    assert out.getvalue().startswith(f"Team {team.id}: 1200 events (")
    out = StringIO()
    call_command("generate_demo_data", team=team.id, events=500, if_empty=True, stdout=out, stderr=StringIO())
    assert Event.objects.filter(team=team).count() == 1200
    assert "already has events" in out.getvalue()


def test_command_errors(team):
    with pytest.raises(CommandError, match="Team 999999 not found."):
        call_command("generate_demo_data", team=999999, events=10, stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="--events must be >= 0"):
        call_command("generate_demo_data", team=team.id, events=-1, stdout=StringIO(), stderr=StringIO())
    assert Event.objects.count() == 0
    call_command("generate_demo_data", team=team.id, events=100, seed=4, stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="already has these demo events"):
        call_command("generate_demo_data", team=team.id, events=100, seed=4, stdout=StringIO(), stderr=StringIO())
    assert Event.objects.count() == 100


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL planner statistics")
def test_tables_are_analyzed_after_loading_on_postgresql(team):
    def estimated_rows(model):
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [model._meta.db_table])
            return cursor.fetchone()[0]

    summary = generate_demo_data(team, events=500, days=7, seed=3, end=T0)
    # ANALYZE of a table this small reads every row: the planner's estimate is the exact count.
    assert estimated_rows(Event) == summary.events == 500
    assert estimated_rows(Person) == summary.persons == Person.objects.count()
    assert estimated_rows(PersonDistinctId) == PersonDistinctId.objects.count()
