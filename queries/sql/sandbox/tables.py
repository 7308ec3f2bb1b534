"""What a FROM or JOIN item reads: the virtual tables over the events store, each filtered on the team, and derived tables."""
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from sqlglot import exp

from events.models import Event, Person, PersonDistinctId

from .. import sessions
from ..context import EVENTS_PROPERTIES, SQLContext
from ..groups import group_join
from ..hogql import BOOL, DATETIME, STRING
from .parsing import _describe
from .values import INTEGER, JSON, PERSON, TEXT_ARRAY, SandboxError, Value

if TYPE_CHECKING:
    from .statements import QueryCompiler


def _quoted(name: str, table: Optional[str] = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _db_column(model, field_name: str, table: str) -> exp.Column:
    return _quoted(model._meta.get_field(field_name).column, table)


@dataclass
class OutputColumn:
    name: str  # as the user sees it
    sql_name: str  # the generated alias in SQL
    value: Value


class Source:
    """A FROM/JOIN item: a virtual table or a derived table, under a generated alias."""

    def __init__(self, compiler: "QueryCompiler", sql_alias: str):
        self.compiler = compiler
        self.sql_alias = sql_alias

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def star(self) -> list[str]:
        raise NotImplementedError

    def resolve(self, chain: list[str], node: exp.Expression) -> Value:
        raise NotImplementedError

    def table_expression(self) -> exp.Expression:
        raise NotImplementedError


class _VirtualTable(Source):
    """A table of the events store, read through a team-filtered derived table of the columns used."""

    model: Any
    team_field = "team"

    def __init__(self, compiler, sql_alias):
        super().__init__(compiler, sql_alias)
        self.used: dict[str, Callable[[], exp.Expression]] = {}

    def column(self, name: str, build: Callable[[], exp.Expression]) -> exp.Column:
        self.used.setdefault(name, build)
        return _quoted(name, self.sql_alias)

    def base(self, field_name: str) -> exp.Column:
        return _db_column(self.model, field_name, "s")

    def team_condition(self, table: str) -> exp.Expression:
        return exp.EQ(this=_db_column(self.model, self.team_field, table), expression=exp.Literal.number(self.compiler.team.id))

    def joins(self) -> list[exp.Join]:
        return []

    def source(self, alias: str) -> exp.Expression:
        """The engine's table (or derived table) for this virtual table, under `alias`."""
        raise NotImplementedError

    def table_expression(self) -> exp.Expression:
        columns = [build().as_(name, quoted=True) for name, build in self.used.items()] or [exp.Literal.number(1).as_("f_one")]
        select = exp.select(*columns).from_(self.source("s"))
        for join in self.joins():
            select = select.join(join)
        select = select.where(self.team_condition("s"))
        return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(self.sql_alias)))

    def _property(self, column: exp.Expression, chain: list[str], node: exp.Expression) -> Value:
        return self.compiler.json_property(column, chain)


GROUP_PROPERTIES_COLUMN = re.compile(r"f_group_([0-4])__properties")

EVENT_STAR = ["uuid", "event", "properties", "timestamp", "distinct_id", "created_at", "$session_id", "person_id"]


class EventsTable(_VirtualTable):
    model = Event
    FIELDS = {*EVENT_STAR, "person", "$window_id"}

    def has(self, name: str) -> bool:
        return name in self.FIELDS

    def star(self) -> list[str]:
        return list(EVENT_STAR)

    def joins(self) -> list[exp.Join]:
        joins = []
        if any(name.startswith("f_person_") for name in self.used):
            condition = exp.and_(
                exp.EQ(this=_db_column(Person, "id", "sp"), expression=self.base("person")),
                exp.EQ(this=_db_column(Person, "team", "sp"), expression=exp.Literal.number(self.compiler.team.id)),
            )
            joins.append(exp.Join(this=self.compiler.engine.persons_source(self.compiler.team.id, "sp"), side="LEFT", on=condition))
        if any(name.startswith("f_sessions__") for name in self.used):  # session filters of {filters}
            context = SQLContext(self.compiler.engine, self.compiler.team, self.compiler.params)
            context.events_time_range = self.compiler.events_time_range
            used = [name[len("f_sessions__"):] for name in self.used if name.startswith("f_sessions__")]
            table = exp.Subquery(this=sessions.sessions_select(context, used), alias=exp.TableAlias(this=exp.to_identifier("ss")))
            condition = exp.EQ(this=exp.column("session_id", table="ss"), expression=self.base("session_id"))
            joins.append(exp.Join(this=table, side="LEFT", on=condition))
        joins.extend(self._group_joins())
        return joins

    def _group_joins(self) -> list[exp.Join]:
        """The groups whose properties {filters} reads (group property filters), one join per type index."""
        joins = []
        for name in self.used:
            match = GROUP_PROPERTIES_COLUMN.fullmatch(name)
            if match:
                index = int(match.group(1))
                team = exp.Literal.number(self.compiler.team.id)
                table, condition = group_join(self.compiler.context, index, f"sg{index}", team=team, events_table="s")
                joins.append(exp.Join(this=table, side="LEFT", on=condition))
        return joins

    def source(self, alias):
        return self.compiler.engine.events_source(self.compiler.team.id, alias)

    def field(self, name: str) -> exp.Column:
        """An events column by Django field name (also the person's: `person__properties`)."""
        if name.startswith("person__"):
            person_field = name[len("person__"):]
            return self.column(f"f_person_{person_field}", lambda: _db_column(Person, person_field, "sp"))
        if GROUP_PROPERTIES_COLUMN.fullmatch(f"f_{name}"):  # `group_<index>__properties`: of the event's group
            return self.column(f"f_{name}", lambda: exp.column("group_properties", table=f"sg{name[len('group_')]}"))
        if name.startswith("sessions__"):  # a column of queries.sql.sessions
            session_column = name[len("sessions__"):]
            return self.column(f"f_{name}", lambda: exp.column(session_column, table="ss"))
        if name == "uuid":
            return self.column("f_uuid", lambda: self.compiler.uuid_text(self.base("uuid")))
        return self.column(f"f_{name}", lambda: self.base(name))

    def resolve(self, chain, node):
        head, rest = chain[0], chain[1:]
        simple = {"uuid": STRING, "event": STRING, "distinct_id": STRING, "timestamp": DATETIME, "created_at": DATETIME}
        if head in simple and not rest:
            return Value(self.field(head), simple[head], not_null=True)
        if head == "$session_id" and not rest:
            return Value(self.field("session_id"), STRING, not_null=True)
        if head == "$window_id" and not rest:
            return self._property(self.field("properties"), ["$window_id"], node)
        if head == "person_id" and not rest:
            return Value(self.field("person"), PERSON)
        if head == "properties":
            if len(rest) == 1 and self.compiler.engine.has_materialized_property(rest[0]):
                return self._materialized_property(rest[0])
            return self._property(self.field("properties"), rest, node) if rest else Value(self.field("properties"), JSON)
        if head == "person" and rest:
            if rest[0] == "id" and len(rest) == 1:
                return Value(self.field("person"), PERSON)
            if rest[0] == "created_at" and len(rest) == 1:
                return Value(self.field("person__created_at"), DATETIME)
            if rest[0] == "properties":
                column = self.field("person__properties")
                return self._property(column, rest[1:], node) if rest[1:] else Value(column, JSON)
        raise SandboxError(f"Unknown field {_describe(node)} on the events table.")


    def _materialized_property(self, key: str) -> Value:
        """A property the engine stores as its own column: read inside the team's derived table from
        the events' marked `properties` column, which the engine turns into that column."""
        aliases = self.__dict__.setdefault("_materialized_aliases", {})
        alias = aliases.setdefault(key, f"f_mat{len(aliases)}")
        engine, params = self.compiler.engine, self.compiler.params

        def build():
            properties = self.base("properties")
            properties.meta[EVENTS_PROPERTIES] = True
            return engine.json_text(properties, key, params)

        column = self.column(alias, build)
        return Value(column, STRING, number=engine.text_to_number(column.copy(), params))


class PersonsTable(_VirtualTable):
    model = Person
    FIELDS = ["id", "created_at", "properties", "is_identified"]

    def source(self, alias):
        return self.compiler.engine.persons_source(self.compiler.team.id, alias)

    def has(self, name):
        return name in self.FIELDS

    def star(self):
        return list(self.FIELDS)

    def resolve(self, chain, node):
        head, rest = chain[0], chain[1:]
        if head == "id" and not rest:
            return Value(self.column("f_id", lambda: self.base("id")), PERSON, not_null=True)
        if head == "created_at" and not rest:
            return Value(self.column("f_created_at", lambda: self.base("created_at")), DATETIME, not_null=True)
        if head == "is_identified" and not rest:
            return Value(self.column("f_is_identified", lambda: self.base("is_identified")), BOOL, not_null=True)
        if head == "properties":
            column = self.column("f_properties", lambda: self.base("properties"))
            return self._property(column, rest, node) if rest else Value(column, JSON)
        raise SandboxError(f"Unknown field {_describe(node)} on the persons table.")


class DistinctIdsTable(_VirtualTable):
    model = PersonDistinctId
    FIELDS = ["distinct_id", "person_id"]

    def source(self, alias):
        return self.compiler.engine.distinct_ids_source(self.compiler.team.id, alias)

    def has(self, name):
        return name in self.FIELDS

    def star(self):
        return list(self.FIELDS)

    def resolve(self, chain, node):
        if chain == ["distinct_id"]:
            return Value(self.column("f_distinct_id", lambda: self.base("distinct_id")), STRING)
        if chain == ["person_id"]:
            return Value(self.column("f_person", lambda: self.base("person")), PERSON)
        raise SandboxError(f"Unknown field {_describe(node)} on the person_distinct_ids table.")


class SessionsTable(_VirtualTable):
    """PostHog's `sessions`: one row per UUIDv7 session id, from queries.sql.sessions (already team-filtered)."""

    model = Event
    TYPES = {sessions.TEXT: STRING, sessions.NUMBER: INTEGER, sessions.TIMESTAMP: DATETIME, sessions.BOOLEAN: INTEGER,
             sessions.TEXT_LIST: TEXT_ARRAY}

    def has(self, name):
        return name in sessions.FIELDS or name in sessions.ALIASES

    def star(self):
        return list(sessions.FIELDS)

    def resolve(self, chain, node):
        if len(chain) != 1 or not self.has(chain[0]):
            raise SandboxError(f"Unknown field {_describe(node)} on the sessions table.")
        field = sessions.session_field(chain[0])
        column = self.column(f"f_{field.column}", lambda: exp.column(field.column, table="s"))
        return Value(column, self.TYPES[field.kind], not_null=chain[0] in ("session_id", "id"))

    def table_expression(self):
        columns = [build().as_(name, quoted=True) for name, build in self.used.items()] or [exp.Literal.number(1).as_("f_one")]
        used = [name[len("f_"):] for name in self.used]  # resolve() names them f_<column>
        source = exp.Subquery(this=sessions.sessions_select(self.compiler.context, used), alias=exp.TableAlias(this=exp.to_identifier("s")))
        return exp.Subquery(this=exp.select(*columns).from_(source), alias=exp.TableAlias(this=exp.to_identifier(self.sql_alias)))


VIRTUAL_TABLES = {"events": EventsTable, "persons": PersonsTable, "person_distinct_ids": DistinctIdsTable, "sessions": SessionsTable}


class DerivedTable(Source):
    """A subquery or CTE in FROM/JOIN: its output columns, by the names the user sees."""

    def __init__(self, compiler, sql_alias, columns: list[OutputColumn], table: exp.Expression):
        super().__init__(compiler, sql_alias)
        self.columns = columns
        self.table = table

    def _find(self, name: str) -> Optional[OutputColumn]:
        return next((column for column in self.columns if column.name == name), None)

    def has(self, name):
        return self._find(name) is not None

    def star(self):
        return [column.name for column in self.columns]

    def resolve(self, chain, node):
        column = self._find(chain[0])
        if column is None:
            raise SandboxError(f"Unknown field {_describe(node)}.")
        sql = _quoted(column.sql_name, self.sql_alias)
        if len(chain) == 1:
            return Value(sql, column.value.type, not_null=column.value.not_null)
        if column.value.type == JSON:
            return self.compiler.json_property(sql, chain[1:])
        raise SandboxError(f"Unknown field {_describe(node)}.")

    def table_expression(self):
        return self.table


@dataclass
class CTEDefinition:
    sql_name: str
    columns: list[OutputColumn]


@dataclass
class Compiled:
    """A compiled query (SELECT or set operation) and its output columns."""

    tree: exp.Expression
    columns: list[OutputColumn]
