"""Realistic demo events for a team: visitors browse a product site in sessions, some sign up
(identifying themselves: `$identify` links their anonymous id to a user id) and some purchase.

Rows go straight to the database with bulk inserts (persons first, then their distinct ids and
events, through the event store: the Django database or ClickHouse), so a million events take minutes, not hours. Everything is drawn from one seeded random
generator, so a seed always produces the same data relative to `end`.
"""
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import Team
from core.database import for_connection
from groups.ingestion import record_groups

from .models import Event, Person, PersonDistinctId
from .services import CapturedEvent, person_uuid_for
from .store import PersonChanges, get_store

CHUNK_EVENTS = 5000
HOST = "shop.example.com"
# (group key, name, industry) of the companies users sign up for.
COMPANIES = [(f"company-{n}", name, industry) for n, (name, industry) in enumerate([
    ("Acme", "manufacturing"), ("Globex", "energy"), ("Initech", "software"), ("Umbrella", "healthcare"), ("Hooli", "software"),
    ("Stark Industries", "manufacturing"), ("Wayne Enterprises", "finance"), ("Wonka", "food"), ("Soylent", "food"), ("Vandelay", "retail"),
], start=1)]

BROWSERS = [("Chrome", 62), ("Safari", 20), ("Firefox", 8), ("Microsoft Edge", 7), ("Opera", 3)]
DEVICES = [  # (device type, os, weight)
    ("Desktop", "Windows", 38),
    ("Desktop", "Mac OS X", 22),
    ("Desktop", "Linux", 4),
    ("Mobile", "iOS", 18),
    ("Mobile", "Android", 14),
    ("Tablet", "iOS", 4),
]
COUNTRIES = [
    ("US", "United States", 34),
    ("GB", "United Kingdom", 10),
    ("DE", "Germany", 9),
    ("IN", "India", 8),
    ("FR", "France", 6),
    ("BR", "Brazil", 6),
    ("CA", "Canada", 5),
    ("NL", "Netherlands", 4),
    ("AU", "Australia", 4),
    ("JP", "Japan", 4),
    ("ES", "Spain", 3),
    ("PL", "Poland", 3),
]
REFERRERS = [("$direct", 40), ("www.google.com", 30), ("news.ycombinator.com", 8), ("twitter.com", 8), ("www.linkedin.com", 6), ("github.com", 8)]
UTM_SOURCES = {"www.google.com": "google", "twitter.com": "twitter", "www.linkedin.com": "linkedin"}
LANDING_PAGES = [("/", 50), ("/pricing", 12), ("/features", 12), ("/blog/launch-week", 8), ("/blog/pricing-changes", 6), ("/docs", 12)]
NEXT_PAGES = {
    "/": [("/features", 4), ("/pricing", 4), ("/blog/launch-week", 1), ("/docs", 2)],
    "/features": [("/pricing", 5), ("/docs", 2), ("/", 1)],
    "/pricing": [("/signup", 4), ("/features", 2), ("/", 1)],
    "/blog/launch-week": [("/", 2), ("/blog/pricing-changes", 1), ("/pricing", 1)],
    "/blog/pricing-changes": [("/pricing", 2), ("/", 1)],
    "/docs": [("/docs/getting-started", 3), ("/pricing", 1), ("/", 1)],
    "/docs/getting-started": [("/docs/api", 2), ("/signup", 1), ("/docs", 1)],
    "/docs/api": [("/docs", 1), ("/signup", 1)],
    "/signup": [("/pricing", 1), ("/", 1)],
    "/app": [("/app/projects", 4), ("/app/settings", 1), ("/app/billing", 2)],
    "/app/projects": [("/app", 2), ("/app/projects/new", 2), ("/app/settings", 1)],
    "/app/projects/new": [("/app/projects", 1)],
    "/app/settings": [("/app", 1), ("/app/billing", 1)],
    "/app/billing": [("/app", 1)],
}
PLANS = [("free", 60), ("pro", 30), ("enterprise", 10)]
PRICES = {"pro": 49.0, "enterprise": 499.0}
FIRST_NAMES = ["Ada", "Ben", "Chen", "Dara", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena", "Mo", "Nia", "Omar", "Priya"]
LAST_NAMES = ["Ng", "Okafor", "Schmidt", "Rossi", "Kim", "Silva", "Novak", "Haddad", "Tanaka", "Murphy", "Garcia", "Singh"]
# Share of sessions starting in each hour of the day (UTC): quiet nights, busy afternoons.
HOUR_WEIGHTS = [2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 9, 10, 10, 10, 9, 8, 7, 6, 5, 4, 3, 3]


@dataclass
class DemoDataSummary:
    events: int = 0
    persons: int = 0
    event_counts: dict[str, int] = field(default_factory=dict)


def _pick(rng: random.Random, weighted: list[tuple]) -> tuple:
    return rng.choices(weighted, weights=[item[-1] for item in weighted])[0]


class _Generator:
    def __init__(self, team: Team, rng: random.Random, start: datetime, end: datetime):
        self.team, self.rng, self.start, self.end = team, rng, start, end
        self.user_number = 0

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def session_uuid(self, moment: datetime) -> "uuid.UUID":
        """A UUIDv7 (time-ordered, as posthog-js makes session ids): sessions are built from these only."""
        millis = int(moment.timestamp() * 1000) & ((1 << 48) - 1)
        value = (millis << 80) | (0x7 << 76) | (self.rng.getrandbits(12) << 64) | (0b10 << 62) | self.rng.getrandbits(62)
        return uuid.UUID(int=value)

    def session_start(self, earliest: datetime) -> datetime:
        """A random moment after `earliest` at a plausible hour; may fall after `end` (then dropped)."""
        day = (earliest + timedelta(days=self.rng.expovariate(1 / 3))).replace(hour=0, minute=0, second=0, microsecond=0)
        hour = self.rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        moment = day + timedelta(hours=hour, seconds=self.rng.randrange(3600))
        return moment if moment > earliest else earliest + timedelta(minutes=self.rng.randrange(30, 600))

    def person(self) -> tuple[dict, list[tuple[str, str, dict, datetime, str]], str]:
        """One visitor's story: (person properties, chronological events, anonymous distinct id)."""
        rng = self.rng
        span = (self.end - self.start).total_seconds()
        # More new visitors later in the range: a growing product.
        first_seen = self.start + timedelta(seconds=span * rng.random() ** 0.7)
        anon_id = str(self.uuid())
        device_type, os_name, _ = _pick(rng, DEVICES)
        browser = "Safari" if os_name == "iOS" else _pick(rng, BROWSERS)[0]
        country_code, country_name, _ = _pick(rng, COUNTRIES)
        referrer = _pick(rng, REFERRERS)[0]
        context = {
            "$browser": browser,
            "$browser_version": rng.choice([118, 119, 120, 121, 17]) if browser != "Safari" else 17,
            "$os": os_name,
            "$device_type": device_type,
            "$geoip_country_code": country_code,
            "$geoip_country_name": country_name,
            "$lib": "web",
            "$host": HOST,
        }
        properties = {
            "$initial_browser": browser,
            "$initial_os": os_name,
            "$initial_device_type": device_type,
            "$initial_referring_domain": referrer,
            "$browser": browser,
            "$os": os_name,
            "$geoip_country_code": country_code,
            "$geoip_country_name": country_name,
        }
        will_sign_up = rng.random() < 0.3
        will_buy = will_sign_up and rng.random() < 0.6
        distinct_id, user_id = anon_id, None
        events: list[tuple[str, str, dict, datetime, str]] = []
        moment = first_seen
        sessions = 1 + min(int(rng.expovariate(1 / 2.5)), 30)
        for number in range(sessions):
            if number:
                moment = self.session_start(moment)
            if moment >= self.end:
                break
            session_id = str(self.session_uuid(moment))
            page = "/app" if user_id else _pick(rng, LANDING_PAGES)[0]
            session_referrer = referrer if number == 0 else rng.choice(["$direct", "$direct", referrer])
            for _ in range(1 + min(int(rng.expovariate(1 / 3)), 14)):
                pageview = {
                    **context,
                    "$current_url": f"https://{HOST}{page}",
                    "$pathname": page,
                    "$referring_domain": session_referrer,
                    "$session_id": session_id,
                }
                if session_referrer in UTM_SOURCES and number == 0:
                    pageview["utm_source"] = UTM_SOURCES[session_referrer]
                events.append(("$pageview", distinct_id, pageview, moment, session_id))
                moment += timedelta(seconds=rng.randrange(5, 180))
                if page == "/signup" and will_sign_up and user_id is None:
                    user_id = distinct_id = self.sign_up(events, anon_id, context, moment, session_id, properties)
                    moment += timedelta(seconds=rng.randrange(5, 60))
                    page = "/app"
                    continue
                if page == "/app/billing" and will_buy and "first_purchase_at" not in properties:
                    self.purchase(events, distinct_id, context, moment, session_id, properties)
                    moment += timedelta(seconds=rng.randrange(5, 60))
                page = _pick(rng, NEXT_PAGES.get(page, [("/", 1)]))[0]
            if will_sign_up and user_id is None and number == 0:
                # Some sign up on the first visit without browsing to /signup first.
                moment += timedelta(seconds=rng.randrange(5, 60))
                user_id = distinct_id = self.sign_up(events, anon_id, context, moment, session_id, properties)
        return properties, [e for e in events if e[3] < self.end], anon_id

    def sign_up(self, events, anon_id, context, moment, session_id, properties) -> str:
        rng = self.rng
        self.user_number += 1
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        user_id = f"user-{self.team.id}-{self.user_number}"
        plan = _pick(rng, PLANS)[0]
        person_props = {
            "email": f"{first.lower()}.{last.lower()}{self.user_number}@example.com",
            "name": f"{first} {last}",
            "plan": plan,
        }
        properties.update(person_props)
        # Users sign up for a company (group type "company"): its events carry `$groups`.
        company = rng.choice(COMPANIES)
        context["$groups"] = {"company": company[0]}
        events.append(("$identify", user_id, {**context, "$anon_distinct_id": anon_id, "$session_id": session_id, "$set": person_props}, moment, session_id))
        events.append(("signed up", user_id, {**context, "plan": plan, "$session_id": session_id, "signup_method": rng.choice(["email", "google", "github"])}, moment + timedelta(seconds=1), session_id))
        events.append(("$groupidentify", user_id, {"$group_type": "company", "$group_key": company[0], "$groups": context["$groups"],
                                                   "$group_set": {"name": company[1], "industry": company[2]}, "$session_id": session_id},
                       moment + timedelta(seconds=2), session_id))
        return user_id

    def purchase(self, events, distinct_id, context, moment, session_id, properties) -> None:
        plan = properties.get("plan") if properties.get("plan") in PRICES else "pro"
        seats = self.rng.choice([1, 1, 1, 2, 3, 5, 10])
        revenue = PRICES[plan] * seats
        properties["first_purchase_at"] = moment.isoformat()
        properties["plan"] = plan
        events.append(("purchase", distinct_id, {**context, "plan": plan, "seats": seats, "revenue": revenue, "currency": "USD", "$session_id": session_id, "$set": {"plan": plan}}, moment, session_id))


def generate_demo_data(
    team: Team,
    *,
    events: int,
    days: int,
    seed: int | None = None,
    end: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoDataSummary:
    """Insert exactly `events` events spread over the `days` days before `end` (default: now)."""
    if events < 0 or days < 1:
        raise ValueError("events must be >= 0 and days >= 1")
    rng = random.Random(seed)
    end = end or timezone.now()
    generator = _Generator(team, rng, end - timedelta(days=days), end)
    summary = DemoDataSummary()
    pending: list[tuple[dict, list, list[str]]] = []
    pending_events = 0
    while summary.events + pending_events < events:
        properties, person_events, anon_id = generator.person()
        if not person_events:
            continue
        person_events = person_events[: events - summary.events - pending_events]
        # The anonymous id, and the user id once the (possibly cut) story reached the sign-up.
        ids = list(dict.fromkeys([anon_id] + [e[1] for e in person_events]))
        pending.append((properties, person_events, ids))
        pending_events += len(person_events)
        if pending_events >= CHUNK_EVENTS:
            _insert(generator, pending, summary)
            pending, pending_events = [], 0
            if progress:
                progress(summary.events, events)
    if pending:
        _insert(generator, pending, summary)
    # Fresh statistics, so the first insights after a bulk load are planned for the rows now there.
    for_connection().analyze([Event._meta.db_table, Person._meta.db_table, PersonDistinctId._meta.db_table])
    if progress:
        progress(summary.events, events)
    return summary


@transaction.atomic
def _insert(generator: _Generator, stories: list[tuple[dict, list, list[str]]], summary: DemoDataSummary) -> None:
    team = generator.team
    persons = Person.objects.bulk_create(
        [
            # A person's created_at is the timestamp of its first event, as in PostHog.
            Person(uuid=person_uuid_for(team.id, ids[0]), team=team, properties=props, created_at=person_events[0][3], is_identified=len(ids) > 1)
            for props, person_events, ids in stories
        ]
    )
    PersonDistinctId.objects.bulk_create(
        [
            PersonDistinctId(team=team, person=person, distinct_id=distinct_id)
            for person, (_, _, ids) in zip(persons, stories)
            for distinct_id in ids
        ],
        batch_size=2000,
    )
    events, person_ids = [], {}
    for person, (_, person_events, ids) in zip(persons, stories):
        person_ids.update(dict.fromkeys(ids, person.pk))
        for name, distinct_id, properties, timestamp, session_id in person_events:
            events.append(CapturedEvent(generator.uuid(), name, distinct_id, properties, timestamp, session_id, process_person=True))
            summary.event_counts[name] = summary.event_counts.get(name, 0) + 1
    # The ingestion write path (COPY on PostgreSQL, one insert on ClickHouse, with the persons
    # mirrored there): far faster than model instances.
    get_store().write(team.id, events, person_ids, timezone.now(),
                     PersonChanges(person_ids={p.pk for p in persons}, new_links=person_ids))
    record_groups(team.id, events)
    summary.events += len(events)
    summary.persons += len(persons)
