"""The tables a query reads (events, optionally joined to persons) and how their fields map to SQL."""
from sqlglot import exp

from events.models import Event, Person

from .engine import Engine, Params

# Marks the events' `properties` column: an engine may read a property from its own column instead.
EVENTS_PROPERTIES = "events_properties"

EVENT_ALIAS = "e"
# Column of the session of each event in the joined events table (queries.sql.joined_events).
SESSION_COLUMN_PREFIX = "session_"
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
# PostHog's ingestion writes the event's group keys as `$group_0..4`; here they are resolved at query time.
GROUP_KEY_PROPERTIES = {f"$group_{index}": index for index in range(5)}
PERSON_FIELDS = {"id": "id", "created_at": "created_at", "properties": "properties", "is_identified": "is_identified"}


class SQLContext:
    """Per-query state shared by the SQL builders: engine, bound parameters, team, joins needed."""

    def __init__(self, engine: Engine, team, params: Params | None = None):
        self.engine = engine
        self.team = team
        self.params = params or Params()
        self.uses_person = False
        # Other tables read through the events table (queries.sql.joined_events): session fields by
        # name, the group type indexes whose group properties are read, and the group type whose
        # key is the actor instead of the person (`aggregation_group_type_index`, group math).
        self.session_fields: set[str] = set()
        self.group_property_indexes: set[int] = set()
        self.aggregation_group_type_index: int | None = None
        # The query's event time range [lower, upper) when known (None: unbounded on that side):
        # sessions are read around it only.
        self.events_time_range = None

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
        stored = self.engine.json_text(self.event_column("properties"), key, self.params)
        if key in GROUP_KEY_PROPERTIES:  # `$group_N`: from `$groups` through the project's mapping (else as stored)
            from .groups import group_key

            return exp.Coalesce(this=group_key(self, GROUP_KEY_PROPERTIES[key]), expressions=[stored])
        return stored

    def session_column(self, name: str, column: str) -> exp.Column:
        """The column of session field `name` (queries.sql.sessions) for each event."""
        self.session_fields.add(name)
        return exp.column(SESSION_COLUMN_PREFIX + column, table=EVENT_ALIAS)

    def person_property(self, key: str) -> exp.Expression:
        return self.engine.json_text(self.person_column("properties"), key, self.params)

    def event_property_number(self, key: str) -> exp.Expression:
        if key in GROUP_KEY_PROPERTIES:
            return self.engine.text_to_number(self.event_property(key), self.params)
        return self.engine.json_number(self.event_column("properties"), key, self.params)

    def person_property_number(self, key: str) -> exp.Expression:
        return self.engine.json_number(self.person_column("properties"), key, self.params)

    def group_properties_column(self, index: int) -> exp.Column:
        """The properties of each event's group of type `index`, a column of the joined events table."""
        from .groups import GROUP_COLUMN

        self.group_property_indexes.add(index)
        return exp.column(GROUP_COLUMN.format(index), table=EVENT_ALIAS)

    def events_table(self) -> exp.Expression:
        """The events table; a derived table with session and group columns when those were used
        (build columns and conditions first: compiling them is what tells)."""
        if self.session_fields or self.group_property_indexes:
            from .joined_events import joined_events_table  # it builds on this module

            return joined_events_table(self)
        return self.engine.events_source(self.team.id, EVENT_ALIAS)

    def person_join_condition(self) -> exp.Expression:
        return exp.EQ(this=self.person_column("id"), expression=self.event_column("person"))

    def person_table(self) -> exp.Table:
        return self.engine.persons_source(self.team.id, PERSON_ALIAS)

    def actor_key(self) -> list[exp.Expression]:
        """GROUP BY these for one group per actor: the event's person, or a personless event's distinct id
        (the group's key when aggregating by group)."""
        if self.aggregation_group_type_index is not None:
            from .groups import group_actor_key

            return group_actor_key(self)
        return self.engine.actor_key(self.event_column("person"), self.event_column("distinct_id"))

    def count_actors(self) -> exp.Expression:
        if self.aggregation_group_type_index is not None:
            from .groups import count_groups

            return count_groups(self)
        return self.engine.count_actors(self.event_column("person"), self.event_column("distinct_id"))

    def team_filter(self) -> exp.Expression:
        return exp.EQ(this=self.event_column("team"), expression=self.param(self.team.id))
