"""ClickHouse (in-process chDB or a server): the event store of `EVENTS_ENGINE=chdb|clickhouse`.

Values are rendered as ClickHouse literals by sqlglot's `clickhouse` dialect (it escapes quotes,
backslashes and control characters), typed where ClickHouse needs it (timestamps as
`toDateTime64(..., 6, 'UTC')`), never pasted into SQL text. Events are read through a derived
table that joins the person overrides when the team has any (an event's person is its distinct
id's newest override, else the person written at ingestion); persons and distinct ids through
their newest, non-deleted versions. A property with a materialized column is read from that column.

ClickHouse inlines a CTE wherever it is read, so a CTE read twice or more is declared
`MATERIALIZED` (computed once) where the server supports it; retention crosses each actor's
arrays of intervals with `ARRAY JOIN` instead of joining the intervals to themselves.

Local times are wall-clock times as `DateTime64(6, 'UTC')` values (the UTC instant shifted by the
zone's offset), so truncation and parts are plain UTC calendar functions, as the naive local
timestamps of the other engines.
"""
import logging
import math
import threading
import uuid
from datetime import date, datetime, timezone
from typing import Any, Optional

import sqlglot
from django.db import DatabaseError
from sqlglot import exp

from .base import MICROSECONDS, NUMERIC_TEXT_REGEX, Engine, EngineTimeout, case, paren
from .base import function as _fn, string as _string

_TRUNCATE = {"second": "toStartOfSecond", "minute": "toStartOfMinute", "hour": "toStartOfHour", "day": "toStartOfDay",
             "month": "toStartOfMonth", "quarter": "toStartOfQuarter", "year": "toStartOfYear"}
_PARTS = {"year": "toYear", "month": "toMonth", "day": "toDayOfMonth", "hour": "toHour", "minute": "toMinute",
          "second": "toSecond", "dayofweek": "toDayOfWeek"}
_ADD = {"second": "addSeconds", "minute": "addMinutes", "hour": "addHours", "day": "addDays", "week": "addWeeks",
        "month": "addMonths", "quarter": "addQuarters", "year": "addYears"}
_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$"
# The mark SQLContext and the sandbox put on the events' `properties` column (queries.sql.context):
# a property with a materialized column is read from that column instead.
EVENTS_PROPERTIES = "events_properties"

# Settings of every query: standard SQL NULLs (outer joins give NULL, aggregates of nothing are NULL),
# and a select alias never shadows a column of the same name in the other clauses.
QUERY_SETTINGS = {"join_use_nulls": 1, "aggregate_functions_null_for_empty": 1, "prefer_column_name_to_alias": 1}

_thread = threading.local()
_capabilities: dict[int, bool] = {}


def materialized_ctes(client) -> bool:
    """Whether the server computes `WITH name AS MATERIALIZED (...)` once (ClickHouse 25.x and
    later, setting `enable_materialized_cte`); asked once per client."""
    found = _capabilities.get(id(client))
    if found is None:
        found = bool(client.query("SELECT count() FROM system.settings WHERE name = 'enable_materialized_cte'").rows[0][0])
        _capabilities[id(client)] = found
    return found

logger = logging.getLogger(__name__)


def _is_float(node: exp.Expression) -> bool:
    """A cast to a floating type (typed divisions of such operands are float divisions)."""
    return isinstance(node, exp.Cast) and node.to.is_type(*exp.DataType.REAL_TYPES)


def _integer(value: exp.Expression) -> exp.Expression:
    return _fn("toInt64", value)


def _utc64(value: exp.Expression) -> exp.Expression:
    return _fn("toDateTime64", value, exp.Literal.number(6), _string("UTC"))


class ClickHouseEngine(Engine):
    vendor = "clickhouse"
    dialect = "clickhouse"
    bucket_by_join = False
    runs_clickhouse_functions = True
    funnel_on_arrays = True

    def __init__(self, connection=None, client=None):
        super().__init__(connection)
        self._client = client
        self._overrides: dict[int, bool] = {}

    @property
    def client(self):
        if self._client is None:
            from events.clickhouse import get_client

            self._client = get_client()
        return self._client

    # --- Sources ----------------------------------------------------------------------------------

    def _materialized(self) -> dict[str, str]:
        from events.clickhouse.materialized import materialized_columns

        return materialized_columns(self.client)

    def _has_overrides(self, team_id: int) -> bool:
        """Whether the team has any person override (asked once per engine, i.e. per query)."""
        from events.clickhouse.schema import PERSON_DISTINCT_ID_OVERRIDES

        if team_id not in self._overrides:
            rows = self.client.query(
                f"SELECT 1 FROM {PERSON_DISTINCT_ID_OVERRIDES} WHERE team_id = {int(team_id)} LIMIT 1").rows
            self._overrides[team_id] = bool(rows)
        return self._overrides[team_id]

    def events_source(self, team_id: int, alias: str) -> exp.Expression:
        """The team's events with their person at query time. The overrides are joined only when
        the team has any: a team without merges reads the events table alone."""
        from events.clickhouse.mirror import EVENT_COLUMNS
        from events.clickhouse.schema import EVENTS, PERSON_DISTINCT_ID_OVERRIDES

        team = exp.Literal.number(int(team_id))
        joined = self._has_overrides(team_id)
        columns = []
        for name in EVENT_COLUMNS:
            column = exp.column(name, table="ev")
            if name == "person_id" and joined:
                column = exp.Coalesce(this=exp.column("person_id", table="ov"), expressions=[column])
            columns.append(exp.alias_(column, name))
        # `id`: the order events were stored in (Django's row id), for ties at the same timestamp.
        columns.append(exp.alias_(_fn("toUnixTimestamp64Micro", exp.column("created_at", table="ev")), "id"))
        for mat in sorted(set(self._materialized().values())):
            columns.append(exp.alias_(exp.column(mat, table="ev", quoted=True), mat, quoted=True))
        select = exp.select(*columns).from_(exp.to_table(EVENTS).as_("ev"))
        if joined:
            overrides = (
                exp.select(exp.column("distinct_id"),
                           exp.alias_(exp.Anonymous(this="argMax", expressions=[exp.column("person_id"), exp.column("version")]), "person_id"))
                .from_(PERSON_DISTINCT_ID_OVERRIDES)
                .where(exp.EQ(this=exp.column("team_id"), expression=team.copy()))
                .group_by(exp.column("distinct_id"))
            )
            select = select.join(
                exp.Subquery(this=overrides, alias=exp.TableAlias(this=exp.to_identifier("ov"))),
                on=exp.EQ(this=exp.column("distinct_id", table="ov"), expression=exp.column("distinct_id", table="ev")),
                join_type="left")
        select = select.where(exp.EQ(this=exp.column("team_id", table="ev"), expression=team.copy()))
        return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(alias)))

    def _newest(self, table: str, team_id: int, key: str, fields: list[str], alias: str) -> exp.Expression:
        """The newest version of each `key` row of a mirror table, without deleted ones (no `version`
        column: an alias named so would shadow the column in the other argMax calls)."""
        def newest(name):
            return exp.Anonymous(this="argMax", expressions=[exp.column(name), exp.column("version")])

        columns = [exp.column(key), exp.column("team_id")] + [exp.alias_(newest(name), name) for name in fields]
        select = (
            exp.select(*columns).from_(table)
            .where(exp.EQ(this=exp.column("team_id"), expression=exp.Literal.number(int(team_id))))
            .group_by(exp.column("team_id"), exp.column(key))
            .having(exp.EQ(this=newest("is_deleted"), expression=exp.Literal.number(0)))
        )
        return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(alias)))

    def persons_source(self, team_id: int, alias: str) -> exp.Expression:
        from events.clickhouse.schema import PERSONS

        return self._newest(PERSONS, team_id, "id", ["uuid", "created_at", "properties", "is_identified"], alias)

    def distinct_ids_source(self, team_id: int, alias: str) -> exp.Expression:
        from events.clickhouse.schema import PERSON_DISTINCT_IDS

        return self._newest(PERSON_DISTINCT_IDS, team_id, "distinct_id", ["person_id"], alias)

    def groups_source(self, team_id: int, alias: str) -> exp.Expression:
        from events.clickhouse.schema import GROUPS

        def newest(name):
            return exp.Anonymous(this="argMax", expressions=[exp.column(name), exp.column("version")])

        keys = [exp.column("team_id"), exp.column("group_type_index"), exp.column("group_key")]
        select = (
            exp.select(*keys, *[exp.alias_(newest(name), name) for name in ("group_properties", "created_at")])
            .from_(GROUPS)
            .where(exp.EQ(this=exp.column("team_id"), expression=exp.Literal.number(int(team_id))))
            .group_by(*[key.copy() for key in keys])
            .having(exp.EQ(this=newest("is_deleted"), expression=exp.Literal.number(0)))
        )
        return exp.Subquery(this=select, alias=exp.TableAlias(this=exp.to_identifier(alias)))

    def cohort_people_source(self, alias: str) -> exp.Expression:
        from events.clickhouse.schema import COHORT_PEOPLE

        return exp.to_table(COHORT_PEOPLE).as_(alias)

    def without_trailing_slash(self, value):
        # In bytes ('/' is one byte in UTF-8, never part of another character): ClickHouse's
        # SUBSTRING counts bytes, so it must not be given a length in characters.
        length = _fn("length", value.copy())
        trailing = exp.and_(exp.GT(this=length, expression=exp.Literal.number(1)), _fn("endsWith", value.copy(), _string("/")))
        trimmed = _fn("substring", value.copy(), exp.Literal.number(1), exp.Sub(this=length.copy(), expression=exp.Literal.number(1)))
        return _fn("if", trailing, trimmed, value.copy())

    def group_by_actor(self, select, key, group):
        """The rows with a person grouped by the bare person id, UNION ALL the personless ones by the
        whole key (an actor's rows are all on one side): ClickHouse aggregates by a Nullable or
        string key through serialized keys, at about twice the cost of a fixed-width key."""
        person, personless = key
        known = _fn("assumeNotNull", person.copy())

        def bare(node):
            if node == personless:
                return exp.null()
            return known.copy() if node == person else node

        with_person = select.copy().transform(bare).where(exp.Not(this=exp.Is(this=person.copy(), expression=exp.null())))
        without_person = select.where(exp.Is(this=person.copy(), expression=exp.null()))
        return exp.union(with_person.group_by(known, *group), without_person.group_by(*key, *group), distinct=False)

    # --- JSON -------------------------------------------------------------------------------------

    def _materialized_column(self, column: exp.Expression, key: str) -> Optional[exp.Expression]:
        if not (isinstance(column, exp.Column) and column.meta.get(EVENTS_PROPERTIES)):
            return None
        name = self._materialized().get(key)
        return None if name is None else exp.column(name, table=column.table or None, quoted=True)

    def has_materialized_property(self, key):
        return key in self._materialized()

    def json_text(self, column, key, params):
        materialized = self._materialized_column(column, key)
        if materialized is not None:
            return materialized
        # events.clickhouse.materialized.property_text_sql, as a tree: strings unquoted, numbers and
        # booleans as their JSON text, null or missing -> NULL.
        raw = _fn("JSONExtractRaw", column, params.add(key))
        return _fn("if", _fn("startsWith", raw, _string('"')), _fn("JSONExtractString", column.copy(), params.add(key)),
                   _fn("nullIf", _fn("nullIf", raw.copy(), _string("")), _string("null")))

    def json_number(self, column, key, params):
        materialized = self._materialized_column(column, key)
        if materialized is not None:
            # The column holds a number's JSON text or a string unquoted: toFloat of either is the same.
            return self.text_to_number(materialized, params)
        kind = _fn("toString", _fn("JSONType", column, params.add(key)))
        return case([
            (exp.In(this=kind, expressions=[_string("Int64"), _string("UInt64"), _string("Double")]),
             _fn("JSONExtractFloat", column.copy(), params.add(key))),
            (exp.EQ(this=kind.copy(), expression=_string("String")),
             self.text_to_number(_fn("JSONExtractString", column.copy(), params.add(key)), params)),
        ])

    def json_object(self, column, key, params):
        kind = _fn("toString", _fn("JSONType", column, params.add(key)))
        return case([(exp.EQ(this=kind, expression=_string("Object")), _fn("JSONExtractRaw", column.copy(), params.add(key)))])

    # --- Text, numbers, UUIDs -----------------------------------------------------------------------

    def text_to_number(self, value, params):
        return case([(self.regex(value, params.add(NUMERIC_TEXT_REGEX)), _fn("toFloat64OrNull", _fn("trimBoth", value.copy())))])

    def to_text(self, value):
        return _fn("toString", value)

    def text_to_timestamp(self, value, params):
        parsed = _fn("parseDateTime64BestEffortOrNull", value.copy(), exp.Literal.number(6), _string("UTC"))
        return case([(self.regex(value, params.add(_ISO_TIMESTAMP)), parsed)])

    def icontains(self, value, pattern):
        return exp.Like(this=_fn("lowerUTF8", value),
                        expression=exp.Escape(this=_fn("lowerUTF8", pattern), expression=_string("\\")))

    def like(self, value, pattern, literal, params):
        return exp.Like(this=value, expression=exp.Escape(this=pattern, expression=_string("\\")))

    def regex(self, value, pattern):
        return _fn("match", value, pattern)

    def regex_replace(self, value, pattern, replacement, params):
        return _fn("replaceRegexpAll", value, params.add(pattern), params.add(replacement))

    def distinct_texts_json(self, value):
        return _fn("toJSONString", _fn("groupUniqArray", value))

    def regex_any_group(self, value, extract, pattern, params):
        # extractAll gives each non-overlapping match's first group; a NULL value has none.
        groups = _fn("extractAll", exp.Coalesce(this=value, expressions=[_string("")]), params.add(extract))
        matches = exp.Lambda(this=_fn("match", exp.column("x"), pattern), expressions=[exp.to_identifier("x")])
        return _fn("arrayExists", matches, groups)

    def natural_nulls_first(self, descending):
        return False  # ClickHouse sorts NULLs last in both directions

    def number_text(self, value):
        return _fn("toString", _fn("toFloat64", value))

    def stored_text(self, value):
        return _fn("toString", value)

    def uuid_text(self, column):
        return _fn("toString", column)

    def modulo(self, this, divisor, *, integer):
        return exp.Mod(this=this, expression=divisor)

    def truncate_to_integer(self, value):
        return _fn("toInt64OrNull", _fn("toString", _fn("trunc", _fn("toFloat64", value))))

    def round(self, value, digits):
        # round() of a float rounds halves to even; of a Decimal away from zero (as PostgreSQL's numeric).
        return _fn("toFloat64", exp.Round(this=_fn("toDecimal128", value, exp.Literal.number(12)), decimals=digits))

    def quantile(self, level, value):
        # R-7 interpolation, PostgreSQL's percentile_cont.
        # sqlglot prints ParameterizedAgg as name(expressions)(params): quantileExactInclusive(level)(value).
        return exp.ParameterizedAgg(this="quantileExactInclusive", expressions=[exp.Literal.number(float(level))],
                                    params=[_fn("toFloat64", value)])

    def middle_values(self, value):
        # Exact order statistics (NULLs skipped): one GROUP BY instead of a window over the values.
        return tuple(exp.ParameterizedAgg(this=name, expressions=[exp.Literal.number(0.5)], params=[value.copy()])
                     for name in ("quantileExactLow", "quantileExactHigh"))

    def bucket_index(self, timestamp, starts, params):
        micros = [int(start.timestamp() * MICROSECONDS) for start in starts]
        steps = {b - a for a, b in zip(micros, micros[1:])}
        position = self.epoch_microseconds(timestamp)
        if not steps:
            return exp.Literal.number(0)  # one bucket: the WHERE clause keeps the range
        if len(steps) == 1:
            # Equal buckets (hours, minutes, UTC days): arithmetic.
            step = steps.pop()
            return _integer(_fn("intDiv", exp.Sub(this=position, expression=exp.Literal.number(micros[0])), exp.Literal.number(step)))
        # Calendar buckets (months, local days over DST): count the starts at or before the timestamp.
        array = exp.Array(expressions=[exp.Literal.number(m) for m in micros])
        at_or_before = exp.Lambda(this=exp.LTE(this=exp.column("b"), expression=position), expressions=[exp.to_identifier("b")])
        return exp.Sub(this=_integer(_fn("arrayCount", at_or_before, array)), expression=exp.Literal.number(1))

    def interval_pairs(self, starts, returns, key, window):
        """Per actor, the arrays of its start and return intervals, crossed with two ARRAY JOINs
        (one pass over the rows, no self-join)."""
        (starts_table, starts_where), (returns_table, returns_where) = starts, returns
        keys = [exp.column(name) for name in key]
        if starts_table == returns_table:
            source = exp.to_table(starts_table)
            kept = [self._unaliased(starts_where), self._unaliased(returns_where)]
        else:
            def side(table, number):
                return exp.select(*[k.copy() for k in keys], exp.column("idx"), exp.alias_(exp.Literal.number(number), "side")).from_(table)

            # Conditions on a side apply to that side's table: there are none when the tables differ.
            assert starts_where is None and returns_where is None
            source = exp.Subquery(this=exp.union(side(starts_table, 0), side(returns_table, 1), distinct=False),
                                  alias=exp.TableAlias(this=exp.to_identifier("sides")))
            kept = [exp.EQ(this=exp.column("side"), expression=exp.Literal.number(number)) for number in (0, 1)]
        arrays = [
            exp.alias_(_fn("groupArrayIf", exp.column("idx"), condition) if condition is not None else _fn("groupArray", exp.column("idx")),
                       name)
            for condition, name in zip(kept, ("s_ids", "r_ids"))
        ]
        per_actor = exp.select(*keys, *arrays).from_(source).group_by(*[k.copy() for k in keys])
        s_idx, r_idx = exp.column("s_idx"), exp.column("r_idx")
        pairs = exp.select(*[k.copy() for k in keys], s_idx, r_idx).from_(
            exp.Subquery(this=per_actor, alias=exp.TableAlias(this=exp.to_identifier("per_actor"))))
        pairs.set("joins", [exp.Join(this=exp.alias_(exp.column("s_ids"), "s_idx"), kind="ARRAY"),
                            exp.Join(this=exp.alias_(exp.column("r_ids"), "r_idx"), kind="ARRAY")])
        return pairs.where(exp.and_(exp.GT(this=r_idx.copy(), expression=s_idx.copy()),
                                    exp.LT(this=exp.Sub(this=r_idx.copy(), expression=s_idx.copy()), expression=window)))

    def session_steps(self, source, key, gap, max_steps=None):
        """Each key's rows gathered into one array sorted once, split into sessions with
        arraySplit, repeated items dropped with arrayFilter and numbered by the array index, then
        ARRAY JOINed back into rows (no window function, so no sort of all the rows).

        A lambda never reads its array by index (`evs[i - 1]`): ClickHouse copies a captured array
        once per element (quadratic in a key's rows). The neighbours come as shifted arrays instead
        (arrayDifference, arrayPopFront/arrayPushFront), passed beside the array."""
        keys = ", ".join(key)
        # Tuples (t_us, event_order, path_item): `.1` the time, `.3` the item.
        per_actor = f"""
            SELECT {keys}, arraySort(x -> (x.1, x.2), groupArray((t_us, event_order, path_item))) AS evs
            FROM {source} GROUP BY {keys}"""
        split = f"""
            SELECT {keys}, arraySplit((x, d, i) -> i > 1 AND d >= {int(gap)}, evs, arrayDifference(arrayMap(x -> x.1, evs)),
                                       arrayEnumerate(evs)) AS sessions
            FROM per_actor"""
        # Of repeated consecutive items the last stays; an empty item last in its session goes too
        # (the last item's next one is taken as '').
        kept = "arrayFilter((s, next_item) -> next_item != s.3, steps, arrayPopFront(arrayPushBack(arrayMap(s -> s.3, steps), '')))"
        if max_steps is not None:
            kept = f"arraySlice({kept}, 1, {int(max_steps)})"  # fewer rows out of the ARRAY JOIN below
        compact = f"""
            SELECT {keys}, session_index,
                   {kept} AS kept
            FROM split ARRAY JOIN sessions AS steps, arrayEnumerate(sessions) AS session_index"""
        numbered = f"""
            SELECT {keys}, session_index, step.1 AS t_us, step.3 AS path_item, p,
                   previous.3 AS previous_item, previous.1 AS previous_t_us
            FROM compact ARRAY JOIN kept AS step, arrayPopBack(arrayPushFront(kept, defaultValueOfArgumentType(kept[1]))) AS previous,
                                    arrayEnumerate(kept) AS p"""
        return [(name, sqlglot.parse_one(sql, read=self.dialect))
                for name, sql in (("per_actor", per_actor), ("split", split), ("compact", compact), ("numbered", numbered))]

    @staticmethod
    def _unaliased(condition):
        """A condition on alias `s`/`r` of the one table, on its bare columns."""
        if condition is None:
            return None
        return condition.copy().transform(lambda n: exp.column(n.name) if isinstance(n, exp.Column) and n.table else n)

    # --- Time: local times are wall-clock DateTime64(6, 'UTC') values --------------------------------

    def epoch_microseconds(self, instant):
        return _fn("toUnixTimestamp64Micro", _utc64(instant))

    def epoch_seconds(self, instant):
        return exp.Div(this=_fn("toFloat64", self.epoch_microseconds(instant)), expression=exp.Literal.number(float(MICROSECONDS)))

    def from_epoch_seconds(self, seconds):
        return _fn("toDateTime64", seconds, exp.Literal.number(6), _string("UTC"))

    @staticmethod
    def _is_utc(tz) -> bool:
        return str(tz) in ("UTC", "Etc/UTC")

    def to_local_time(self, instant, tz, params):
        if self._is_utc(tz):
            return _utc64(instant)
        return _utc64(_fn("toString", _utc64(instant), params.add(str(tz))))

    def from_local_time(self, local, tz, params):
        if self._is_utc(tz):
            return local
        wall = _fn("toDateTime64", _fn("toString", local), exp.Literal.number(6), params.add(str(tz)))
        return _fn("toTimeZone", wall, _string("UTC"))

    def truncate_local_time(self, unit, local, week_start):
        if unit == "week":
            return _utc64(_fn("toStartOfWeek", local, exp.Literal.number(1 if week_start == 1 else 0)))
        return _utc64(_fn(_TRUNCATE[unit], local))

    def local_date(self, local):
        return _fn("toDate", local)

    def date_local_time(self, value):
        return _utc64(value)

    def date_literal(self, value, params):
        return _fn("toDate", params.add(value.isoformat()))

    def local_time_part(self, unit, local):
        return _integer(_fn(_PARTS[unit], local))

    def date_part(self, unit, value):
        return _integer(_fn(_PARTS.get(unit, "toDayOfWeek"), value))

    def local_epoch_seconds(self, local):
        return _fn("toUnixTimestamp64Second", _utc64(local))

    def floor_divide(self, value, divisor):
        return _integer(_fn("floor", exp.Div(this=paren(value), expression=exp.Literal.number(divisor))))

    def shift_time(self, value, amount, unit, *, is_date, tz, params):
        amount = _integer(amount)
        if is_date:
            return _fn(_ADD[unit], value, amount)
        if unit in ("second", "minute", "hour"):
            return _fn(_ADD[unit], _utc64(value), amount)
        return self.from_local_time(_fn(_ADD[unit], self.to_local_time(value, tz, params), amount), tz, params)

    def local_time_text(self, local):
        return _fn("formatDateTime", local, _string("%Y-%m-%d %H:%i:%S"))

    # --- Rendering: values inlined as typed literals ---------------------------------------------------

    def _literal(self, value: Any) -> exp.Expression:
        if isinstance(value, datetime):
            text = value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
            return _utc64(_string(text))
        if isinstance(value, date):
            return _fn("toDate", _string(value.isoformat()))
        if isinstance(value, uuid.UUID):
            return _string(str(value))
        if isinstance(value, float) and not math.isfinite(value):
            return _fn("toFloat64", _string(str(value)))
        return super()._literal(value)

    def render(self, tree, params):
        return self._clickhouse_tree(tree, params).sql(dialect=self.dialect), {}

    def _clickhouse_tree(self, tree, params):
        """Values inlined; standard SQL ClickHouse spells otherwise."""
        def inline(node):
            if isinstance(node, exp.Placeholder) and node.name in params.values:
                return self._literal(params.values[node.name])
            return node

        def rewrite(node):
            if isinstance(node, exp.Window) and isinstance(node.this, (exp.Lag, exp.Lead)):
                return self._lag_lead(node)
            if isinstance(node, exp.Window) and self._wide_range(node):
                return self._scaled_range(node)
            if isinstance(node, exp.Div) and node.args.get("typed") and not any(map(_is_float, (node.this, node.expression))):
                # A typed division of integers truncates toward zero (ClickHouse's `/` always gives a float).
                return _fn("intDiv", node.this.copy(), node.expression.copy())
            if isinstance(node, exp.CTE):
                # ClickHouse inlines a CTE at each reference (computing it again each time): one read
                # twice or more is materialized (computed once) where the server can, unless the query
                # asks otherwise (NOT MATERIALIZED: cheaper to compute twice than to store).
                # (Set in place: a node `rewrite` replaces is not descended into.)
                inline = node.args.get("materialized") is False
                node.set("materialized", materialize and not inline and references.get(node.alias_or_name, 0) > 1 or None)
                return node
            if isinstance(node, exp.Values) and not isinstance(node.parent, exp.Subquery) and node.args.get("alias"):
                # FROM VALUES (...) AS t parses only parenthesized.
                alias = node.args["alias"]
                values = node.copy()
                values.set("alias", None)
                return exp.Subquery(this=values, alias=alias.copy())
            return node

        # ClickHouse refuses MATERIALIZED in a recursive WITH (funnels with optional steps).
        materialize = (tree.find(exp.CTE) is not None and materialized_ctes(self.client)
                       and not any(with_.args.get("recursive") for with_ in tree.find_all(exp.With)))
        references = {}
        if materialize:
            for table in tree.find_all(exp.Table):
                if not table.args.get("db"):
                    references[table.name] = references.get(table.name, 0) + 1
        return tree.transform(inline).transform(rewrite)

    @staticmethod
    def _lag_lead(window: exp.Window) -> exp.Window:
        """LAG/LEAD with standard NULLs past the partition's ends: ClickHouse's lag/lead give the
        type's default there; lagInFrame/leadInFrame of a Nullable over the whole partition do not."""
        call = window.this
        name = "lagInFrame" if isinstance(call, exp.Lag) else "leadInFrame"
        args = [_fn("toNullable", call.this.copy())]
        if call.args.get("offset") is not None:
            args.append(call.args["offset"].copy())
        if call.args.get("default") is not None:
            args.append(call.args["default"].copy())
        rewritten = window.copy()
        rewritten.set("this", _fn(name, *args))
        rewritten.set("spec", exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                                             end="UNBOUNDED", end_side="FOLLOWING"))
        return rewritten

    MAX_RANGE_OFFSET = 2**31 - 1

    @classmethod
    def _offsets(cls, window: exp.Window) -> list[exp.Literal]:
        spec = window.args.get("spec")
        if spec is None or str(spec.args.get("kind", "")).upper() != "RANGE":
            return []
        return [bound for bound in (spec.args.get("start"), spec.args.get("end"))
                if isinstance(bound, exp.Literal) and not bound.is_string]

    @classmethod
    def _wide_range(cls, window: exp.Window) -> bool:
        order = window.args.get("order")
        return (order is not None and len(order.expressions) == 1
                and any(int(bound.this) > cls.MAX_RANGE_OFFSET for bound in cls._offsets(window)))

    @classmethod
    def _scaled_range(cls, window: exp.Window) -> exp.Window:
        """ClickHouse takes RANGE offsets below 2^31 only (funnel windows are microseconds): order by
        the key divided by 2^k and divide the offsets likewise. Dividing by a power of two is exact
        in floating point, so when 2^k divides every offset the frames are the same rows."""
        offsets = [int(bound.this) for bound in cls._offsets(window)]
        shift = min((offset & -offset).bit_length() - 1 for offset in offsets if offset)  # 2^shift divides them all
        if any(offset >> shift > cls.MAX_RANGE_OFFSET for offset in offsets):
            raise DatabaseError("The conversion window is too long for ClickHouse's window frames.")
        divisor = exp.Literal.number(float(2**shift))
        rewritten = window.copy()
        ordered = rewritten.args["order"].expressions[0]
        ordered.set("this", exp.Div(this=_fn("toFloat64", ordered.this.copy()), expression=divisor))
        spec = rewritten.args["spec"]
        for side in ("start", "end"):
            bound = spec.args.get(side)
            if isinstance(bound, exp.Literal) and not bound.is_string:
                spec.set(side, exp.Literal.number(int(bound.this) >> shift))
        return rewritten

    # --- Execution: timeout by max_execution_time, cancellation by query id ---------------------------

    def execute(self, tree, params, *, timeout=None, cancel_check=None):
        from events.clickhouse.client import QUERY_WAS_CANCELLED, TIMEOUT_EXCEEDED, ClickHouseError

        sql, _ = self.render(tree, params)
        settings = dict(QUERY_SETTINGS)
        if tree.find(exp.CTE) is not None and materialized_ctes(self.client):
            settings["enable_materialized_cte"] = 1
        if timeout:
            settings["max_execution_time"] = float(timeout)
        query_id = getattr(_thread, "query_id", None) or uuid.uuid4().hex
        try:
            if cancel_check is None:
                return self.client.query(sql, settings=settings, query_id=query_id).rows
            return self._watched(sql, settings, query_id, cancel_check)
        except ClickHouseError as error:
            logger.debug("ClickHouse refused a query (%s): %s", error, sql)
            message = str(error).strip().splitlines()[0] if str(error).strip() else "ClickHouse error"
            if error.code == TIMEOUT_EXCEEDED:
                raise EngineTimeout(message) from error
            if error.code == QUERY_WAS_CANCELLED:
                raise DatabaseError("The query was cancelled.") from error
            raise DatabaseError(message) from error

    def execute_write(self, tree, params, *, timeout=None):
        """An INSERT ... SELECT into the cohort membership table: the SELECT runs on ClickHouse and
        its rows are written to the Django table (the source of truth) and the ClickHouse mirror."""
        from cohorts.models import CohortPeople
        from events.clickhouse.mirror import insert_cohort_people

        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if not (isinstance(tree, exp.Insert) and target.name == CohortPeople._meta.db_table):
            raise NotImplementedError("ClickHouse writes only cohort members.")
        columns = [column.name for column in tree.this.expressions]
        rows = self.execute(tree.expression, params, timeout=timeout)
        CohortPeople.objects.bulk_create([CohortPeople(**dict(zip(columns, row))) for row in rows], batch_size=5000)
        insert_cohort_people([tuple(dict(zip(columns, row))[name] for name in ("cohort_id", "person_id", "version")) for row in rows],
                             self.client)
        return len(rows)

    CHECK_EVERY_SECONDS = 0.25

    def _watched(self, sql, settings, query_id, cancel_check):
        """Run the query in a helper thread while this one polls `cancel_check` (it may use the
        Django database and cache, which belong to this thread) and kills the query when it says so."""
        outcome = {}

        def run():
            try:
                outcome["rows"] = self.client.query(sql, settings=settings, query_id=query_id).rows
            except BaseException as error:  # handed back to the caller's thread
                outcome["error"] = error

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        killed = False
        while worker.is_alive():
            worker.join(self.CHECK_EVERY_SECONDS)
            if worker.is_alive() and not killed and cancel_check():
                killed = True
                try:
                    self.cancel_backend(query_id)
                except Exception:  # the query then ends at its timeout
                    logger.warning("Could not kill ClickHouse query %s", query_id, exc_info=True)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["rows"]

    def backend_id(self):
        """A query id for this thread's next queries (an async job's), so another process can kill them."""
        _thread.query_id = uuid.uuid4().hex
        return _thread.query_id

    def cancel_backend(self, backend_id):
        self.client.kill_query(str(backend_id))
