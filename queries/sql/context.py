"""The tables a query reads (events, optionally joined to persons) and how their fields map to SQL."""
from sqlglot import exp

from events.models import Event, Person

from .engine import Engine, Params

# Marks the events' `properties` column: an engine may read a property from its own column instead.
EVENTS_PROPERTIES = "events_properties"

EVENT_ALIAS = "e"
PERSON_ALIAS = "p"

# HogQL field name -> Event model field
EVENT_FIELDS = {
    "uuid": "uuid",
    "event": "event",
    "distinct_id": "distinct_id",
    "timestamp": "timestamp",
    "created_at": "created_at",
    "$session_id": "session_id",
    "person_id": "person",
    "properties": "properties",
}
PERSON_FIELDS = {"id": "id", "created_at": "created_at", "properties": "properties", "is_identified": "is_identified"}


class SQLContext:
    """Per-query state shared by the SQL builders: engine, bound parameters, team, joins needed."""

    def __init__(self, engine: Engine, team, params: Params | None = None):
        self.engine = engine
        self.team = team
        self.params = params or Params()
        self.uses_person = False

    def param(self, value) -> exp.Placeholder:
        return self.params.add(value)

    def event_column(self, field: str) -> exp.Column:
        column = exp.column(Event._meta.get_field(field).column, table=EVENT_ALIAS)
        if field == "properties":
            column.meta[EVENTS_PROPERTIES] = True
        return column

    def person_column(self, field: str) -> exp.Column:
        self.uses_person = True
        return exp.column(Person._meta.get_field(field).column, table=PERSON_ALIAS)

    def event_property(self, key: str) -> exp.Expression:
        return self.engine.json_text(self.event_column("properties"), key, self.params)

    def person_property(self, key: str) -> exp.Expression:
        return self.engine.json_text(self.person_column("properties"), key, self.params)

    def event_property_number(self, key: str) -> exp.Expression:
        return self.engine.json_number(self.event_column("properties"), key, self.params)

    def person_property_number(self, key: str) -> exp.Expression:
        return self.engine.json_number(self.person_column("properties"), key, self.params)

    def events_table(self) -> exp.Table:
        return self.engine.events_source(self.team.id, EVENT_ALIAS)

    def person_join_condition(self) -> exp.Expression:
        return exp.EQ(this=self.person_column("id"), expression=self.event_column("person"))

    def person_table(self) -> exp.Table:
        return self.engine.persons_source(self.team.id, PERSON_ALIAS)

    def actor_key(self) -> list[exp.Expression]:
        """GROUP BY these for one group per actor: the event's person, or a personless event's distinct id."""
        return self.engine.actor_key(self.event_column("person"), self.event_column("distinct_id"))

    def count_actors(self) -> exp.Expression:
        return self.engine.count_actors(self.event_column("person"), self.event_column("distinct_id"))

    def team_filter(self) -> exp.Expression:
        return exp.EQ(this=self.event_column("team"), expression=self.param(self.team.id))
