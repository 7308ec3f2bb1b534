"""The statement compiler: SELECTs, set operations, CTEs and scopes, into one safe SQL tree."""
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional
from zoneinfo import ZoneInfo

from sqlglot import exp

from events.models import Person

from ...dates import QueryDateRange
from ..context import SQLContext
from ..engine import Engine, paren
from ..hogql import STRING
from ..properties import and_all, properties_condition, test_account_filters
from .expressions import ExprCompiler
from .parsing import _describe, parse_select, _set_args, to_hogql
from .tables import VIRTUAL_TABLES, Compiled, CTEDefinition, DerivedTable, EventsTable, OutputColumn, Source, _db_column, _quoted
from .time_sql import TimeSQL
from .values import DEFAULT_LIMIT, INTERVAL, MAX_LIMIT, SandboxError, SharedParams, Value

MAX_QUERY_LENGTH = 100_000
MAX_NESTING = 32
SELECT_CLAUSES = {"expressions", "distinct", "from_", "joins", "where", "group", "having", "order", "limit", "offset", "with_"}
SET_OPERATION_CLAUSES = {"this", "expression", "distinct", "with_", "order", "limit", "offset"}
CLAUSE_NAMES = {
    "prewhere": "PREWHERE", "settings": "SETTINGS", "format": "FORMAT", "windows": "WINDOW", "qualify": "QUALIFY",
    "sample": "SAMPLE", "final": "FINAL", "into": "INTO", "locks": "FOR UPDATE", "laterals": "LATERAL",
    "kind": "SELECT AS STRUCT/VALUE", "hint": "hints", "connect": "CONNECT BY", "options": "OPTION",
}
TABLES_HELP = "You can query the tables: events, persons, person_distinct_ids, sessions."


class ScopeContext(SQLContext):
    """queries.sql.properties' view of one events table of a sandboxed query (for {filters})."""

    def __init__(self, compiler: "QueryCompiler", source: EventsTable):
        super().__init__(compiler.engine, compiler.team, compiler.params)
        self.source = source

    def event_column(self, field: str) -> exp.Column:
        return self.source.field(field)

    def group_properties_column(self, index: int) -> exp.Column:
        return self.source.field(f"group_{index}__properties")

    def person_column(self, field: str) -> exp.Column:
        self.uses_person = True
        return self.source.field(f"person__{field}")

    def session_column(self, name: str, column: str) -> exp.Column:
        return self.source.field(f"sessions__{column}")


class Scope:
    """The FROM/JOIN items, CTEs and SELECT aliases one SELECT's expressions can see."""

    def __init__(self, query: "QueryCompiler", ctes: dict[str, CTEDefinition]):
        self.query = query
        self.ctes = ctes
        self.sources: list[tuple[Optional[str], Source]] = []
        self.aliases: dict[str, exp.Expression] = {}

    def add(self, node: exp.Expression) -> Source:
        query = self.query
        sql_alias = query.name("t")
        if isinstance(node, exp.Table):
            if not isinstance(node.this, exp.Identifier):
                raise SandboxError(f"Table functions such as {_describe(node.this)} are not allowed. {TABLES_HELP}")
            parts = [node.args.get(key) for key in ("catalog", "db", "this")]
            name = ".".join(part.name for part in parts if part is not None)
            if name not in self.ctes and name not in VIRTUAL_TABLES:
                raise SandboxError(f"Table `{name}` is not allowed. {TABLES_HELP}")
            alias = self._alias(node)
            query.check(node, {"this", "alias"})
            if name in self.ctes:
                cte = self.ctes[name]
                columns = [OutputColumn(column.name, column.sql_name, column.value) for column in cte.columns]
                source = DerivedTable(query, sql_alias, columns, exp.to_table(cte.sql_name).as_(sql_alias))
            else:
                source = VIRTUAL_TABLES[name](query, sql_alias)
            user_name = alias or name
        elif isinstance(node, exp.Subquery):
            query.check(node, {"this", "alias"})
            alias = self._alias(node)
            compiled = query.query(node.this, self.ctes)
            table = exp.Subquery(this=compiled.tree, alias=exp.TableAlias(this=exp.to_identifier(sql_alias)))
            source = DerivedTable(query, sql_alias, compiled.columns, table)
            user_name = alias
        else:
            raise SandboxError(f"{_describe(node)} is not allowed in FROM. {TABLES_HELP}")
        if user_name is not None and any(name == user_name for name, _ in self.sources):
            raise SandboxError(f"The table alias {user_name!r} is used twice in one FROM clause.")
        self.sources.append((user_name, source))
        return source

    def _alias(self, node: exp.Expression) -> Optional[str]:
        alias = node.args.get("alias")
        if alias is None:
            return None
        self.query.check(alias, {"this"})
        return alias.name

    def source_named(self, name: str, node: exp.Expression) -> Source:
        for user_name, source in self.sources:
            if user_name == name:
                return source
        raise SandboxError(f"Unknown table {name!r} in {_describe(node)}.")

    def lookup(self, chain: list[str], node: exp.Expression) -> Value:
        if len(chain) > 1:
            for user_name, source in self.sources:
                if user_name == chain[0]:
                    return source.resolve(chain[1:], node)
        candidates = [source for _, source in self.sources if source.has(chain[0])]
        if len(candidates) == 1:
            return candidates[0].resolve(chain, node)
        if candidates:
            raise SandboxError(f"Field {_describe(node)} is ambiguous: prefix it with a table alias.")
        if not self.sources:
            raise SandboxError(f"Unknown field {_describe(node)}: the query has no FROM clause.")
        raise SandboxError(f"Unknown field {_describe(node)}.")

    def filters_condition(self) -> exp.Expression:
        events = [source for _, source in self.sources if isinstance(source, EventsTable)]
        if len(events) != 1:
            raise SandboxError("{filters} needs exactly one events table in the FROM clause of its SELECT.")
        query, source = self.query, events[0]
        filters = query.filters
        conditions: list[exp.Expression] = [build(ScopeContext(query, source)) for build in query.event_conditions]
        if filters is not None:
            date_range = filters.dateRange
            if date_range is not None and (date_range.date_from or date_range.date_to):
                resolved = QueryDateRange(date_range, tz=query.tz, interval="day", now=query.now)
                lower = resolved.date_from() if date_range.date_from and date_range.date_from != "all" else None
                upper = resolved.date_to() if date_range.date_to else None
                if lower is not None:
                    conditions.append(exp.GTE(this=source.field("timestamp"), expression=query.time.constant(lower)))
                if upper is not None:
                    conditions.append(exp.LTE(this=source.field("timestamp"), expression=query.time.constant(upper)))
                query.bound_events(lower, upper)
            context = ScopeContext(query, source)
            conditions.append(properties_condition(filters.properties, context))
            if filters.filterTestAccounts:
                conditions.append(properties_condition(test_account_filters(query.team), context))
        condition = and_all(conditions)
        return paren(condition) if condition is not None else exp.true()


@dataclass
class SandboxQuery:
    """A compiled HogQL query, ready to run, and what the response needs to describe it."""

    tree: exp.Expression
    params: SharedParams
    columns: list[str]
    value_types: list[str]
    hogql: str
    paginated: bool
    limit: Optional[int]
    offset: int


class QueryCompiler:
    def __init__(self, engine: Engine, team, *, now: datetime, tz: ZoneInfo, filters=None, variables=None, values=None,
                 event_conditions=(), events_time_range=None):
        self.engine = engine
        self.team = team
        self.now = now
        self.tz = tz
        self.params = SharedParams()
        self.context = SQLContext(engine, team, self.params)
        # Where the events of {filters} lie, when known: their sessions are read around it only.
        self.events_time_range = events_time_range
        self.time = TimeSQL(engine, self.params, tz)
        self.filters = filters
        # More conditions for the events table of {filters}: builders taking that table's SQLContext.
        self.event_conditions = list(event_conditions)
        self.variables = variables or {}
        self.values = values or {}
        self._counter = 0
        self._depth = 0

    def bound_events(self, lower: Optional[datetime], upper: Optional[datetime]) -> None:
        """The events of {filters} lie in [lower, upper] (None: unbounded): read the sessions around them only."""
        if lower is not None or upper is not None:
            self.events_time_range = (lower, upper)

    def name(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def check(self, node: exp.Expression, allowed: set[str]) -> None:
        for key in _set_args(node):
            if key not in allowed:
                clause = CLAUSE_NAMES.get(key, key.rstrip("_").upper())
                raise SandboxError(f"{clause} is not supported in SQL insights: {_describe(node)}")

    # --- Top level ---

    def compile(self, node: exp.Expression, *, default_limit: int = DEFAULT_LIMIT, max_limit: int = MAX_LIMIT,
                limit: Optional[int] = None, offset: Optional[int] = None) -> SandboxQuery:
        """The whole query; without a LIMIT of its own it gets `limit` (default 100) + 1 rows to detect more."""
        user_limit = node.args.get("limit")
        compiled = self.query(node, {})
        tree = compiled.tree
        printed = node.copy()
        if user_limit is not None:
            capped = min(self.integer(user_limit.expression, "LIMIT"), max_limit)
            printed.set("limit", exp.Limit(expression=exp.Literal.number(capped)))
            paginated, page_offset = False, self.integer(node.args["offset"].expression, "OFFSET") if node.args.get("offset") else 0
        else:
            capped = min(limit if limit is not None else default_limit, max_limit)
            user_offset = node.args.get("offset")
            page_offset = offset if offset is not None else self.integer(user_offset.expression, "OFFSET") if user_offset else 0
            tree.set("limit", exp.Limit(expression=exp.Literal.number(capped + 1)))
            if page_offset:
                tree.set("offset", exp.Offset(expression=exp.Literal.number(page_offset)))
                printed.set("offset", exp.Offset(expression=exp.Literal.number(page_offset)))
            printed.set("limit", exp.Limit(expression=exp.Literal.number(capped)))
            paginated = True
        return SandboxQuery(
            tree=tree,
            params=self.params,
            columns=[column.name for column in compiled.columns],
            value_types=[column.value.type for column in compiled.columns],
            hogql=to_hogql(printed),
            paginated=paginated,
            limit=capped,
            offset=page_offset,
        )

    def integer(self, node: exp.Expression, clause: str) -> int:
        value = ExprCompiler(self, Scope(self, {}), clause=clause, aggregates=False).compile(node)
        if not (value.is_const and isinstance(value.const, int) and not isinstance(value.const, bool) and value.const >= 0):
            raise SandboxError(f"{clause} must be a whole number of 0 or more.")
        return value.const

    # --- Queries ---

    def query(self, node: exp.Expression, ctes: dict[str, CTEDefinition]) -> "Compiled":
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise SandboxError(f"The query nests subqueries more than {MAX_NESTING} levels deep.")
            if isinstance(node, exp.Subquery) and node.args.get("alias") is None:
                self.check(node, {"this"})
                return self.query(node.this, ctes)
            if isinstance(node, exp.Select):
                return self.select(node, ctes)
            if isinstance(node, (exp.Union, exp.Except, exp.Intersect)):
                return self.set_operation(node, ctes)
            raise SandboxError(f"Expected a SELECT query, got {_describe(node)}.")
        finally:
            self._depth -= 1

    subquery = query

    def _ctes(self, node: Optional[exp.With], ctes: dict) -> tuple[dict, list[exp.CTE]]:
        if node is None:
            return ctes, []
        if node.args.get("recursive"):
            raise SandboxError("WITH RECURSIVE is not allowed in SQL insights.")
        self.check(node, {"expressions"})
        ctes, out = dict(ctes), []
        for cte in node.expressions:
            if cte.args.get("scalar") or not isinstance(cte.this, (exp.Select, exp.SetOperation, exp.Subquery)):
                raise SandboxError("Only WITH name AS (SELECT ...) is supported.")
            self.check(cte, {"this", "alias"})
            self.check(cte.args["alias"], {"this"})
            compiled = self.query(cte.this, ctes)
            sql_name = self.name("w")
            ctes[cte.alias] = CTEDefinition(sql_name, compiled.columns)
            out.append(exp.CTE(this=compiled.tree, alias=exp.TableAlias(this=exp.to_identifier(sql_name))))
        return ctes, out

    @staticmethod
    def column_name(item: exp.Expression) -> str:
        chain = ExprCompiler.chain(item)
        return chain[-1] if chain else to_hogql(item)

    def _select_items(self, item: exp.Expression, scope: Scope, compiler: ExprCompiler) -> list[tuple[str, Value]]:
        if isinstance(item, exp.Star):
            self.check(item, set())
            if not scope.sources:
                raise SandboxError("SELECT * needs a FROM clause.")
            return [(name, source.resolve([name], item)) for _, source in scope.sources for name in source.star()]
        if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
            self.check(item.this, set())
            source = scope.source_named(item.args["table"].name, item)
            return [(name, source.resolve([name], item)) for name in source.star()]
        if isinstance(item, exp.Alias):
            self.check(item, {"this", "alias"})
            return [(item.alias, compiler.alias(item.alias, item.this))]
        return [(self.column_name(item), compiler.compile(item))]

    def select(self, node: exp.Select, ctes: dict) -> "Compiled":
        self.check(node, SELECT_CLAUSES)
        if not node.expressions:
            raise SandboxError("A SELECT needs at least one column.")
        ctes, with_ = self._ctes(node.args.get("with_"), ctes)
        scope = Scope(self, ctes)
        from_ = node.args.get("from_")
        if from_ is not None:
            self.check(from_, {"this"})
            scope.add(from_.this)
        joins = []
        for join in node.args.get("joins") or []:
            self.check(join, {"this", "on", "side", "kind"})
            side, kind = (join.side or "").upper(), (join.kind or "").upper()
            if side not in ("", "LEFT", "RIGHT", "FULL") or kind not in ("", "INNER", "OUTER", "CROSS"):
                raise SandboxError(f"{' '.join(filter(None, [side, kind]))} JOIN is not supported in SQL insights.")
            if join.args.get("on") is None and (side or kind not in ("", "CROSS")):
                raise SandboxError(f"{side or kind} JOIN needs an ON condition.")
            if join.args.get("on") is not None and kind == "CROSS":
                raise SandboxError("CROSS JOIN takes no ON condition.")
            joins.append((join, scope.add(join.this), side, kind))
        distinct = node.args.get("distinct")
        if distinct is not None:
            self.check(distinct, set())

        for item in node.expressions:
            if isinstance(item, exp.Alias):
                if item.alias in scope.aliases:
                    raise SandboxError(f"The alias {item.alias!r} is used twice.")
                scope.aliases[item.alias] = item.this

        select_compiler = ExprCompiler(self, scope, clause="SELECT", aggregates=True)
        outputs: list[tuple[str, Value]] = []
        for item in node.expressions:
            outputs.extend(self._select_items(item, scope, select_compiler))
        for _name, value in outputs:
            if value.type in ("list", INTERVAL):
                raise SandboxError("Lists and intervals cannot be selected.")

        join_conditions = [ExprCompiler(self, scope, clause="JOIN ON", aggregates=False).condition(join.args["on"])
                           if join.args.get("on") is not None else None for join, *_ in joins]
        where = node.args.get("where")
        where_sql = ExprCompiler(self, scope, clause="WHERE", aggregates=False).condition(where.this) if where is not None else None

        group_sql = []
        group = node.args.get("group")
        if group is not None:
            self.check(group, {"expressions"})
            if not group.expressions:
                raise SandboxError("GROUP BY needs at least one expression.")
            compiler = ExprCompiler(self, scope, clause="GROUP BY", aggregates=False)
            for item in group.expressions:
                value = self._positional(item, outputs) or compiler.compile(item)
                if value.aggregate:
                    raise SandboxError("Aggregate functions are not allowed in GROUP BY.")
                group_sql.append(value.sql.copy())
        having = node.args.get("having")
        having_sql = ExprCompiler(self, scope, clause="HAVING", aggregates=True).condition(having.this) if having is not None else None

        order_sql = []
        order = node.args.get("order")
        if order is not None:
            self.check(order, {"expressions"})
            compiler = ExprCompiler(self, scope, clause="ORDER BY", aggregates=True)
            for item in order.expressions:
                self.check(item, {"this", "desc", "nulls_first"})
                value = self._positional(item.this, outputs) or compiler.compile(item.this)
                sql = self.engine.binary_order(value.sql.copy()) if value.type == STRING else value.sql.copy()
                desc = bool(item.args.get("desc"))
                nulls_first = self._natural_nulls_first(desc) if value.not_null else bool(item.args.get("nulls_first"))
                order_sql.append(exp.Ordered(this=sql, desc=desc, nulls_first=nulls_first))

        if group_sql or having_sql is not None or any(value.aggregate for _name, value in outputs):
            self._check_grouped(outputs, group_sql, order_sql, having_sql)
        distinct_order = []
        if distinct is not None and order_sql:
            # PostgreSQL cannot ORDER BY `x COLLATE "C"` under DISTINCT: the distinct rows are ordered outside.
            selected = [value.sql.sql() for _name, value in outputs]
            for item in order_sql:
                inner = item.this.this if isinstance(item.this, exp.Collate) else item.this
                if inner.sql() not in selected:
                    raise SandboxError("With SELECT DISTINCT, ORDER BY can only use the selected columns.")
                index = selected.index(inner.sql())
                column = _quoted(f"c{index}")
                distinct_order.append(exp.Ordered(this=self.engine.binary_order(column) if outputs[index][1].type == STRING else column,
                                                  desc=item.args.get("desc"), nulls_first=item.args.get("nulls_first")))

        tree = exp.Select(expressions=[exp.Alias(this=value.sql, alias=exp.to_identifier(f"c{index}", quoted=True))
                                       for index, (_name, value) in enumerate(outputs)])
        if distinct is not None:
            tree.set("distinct", exp.Distinct())
        if scope.sources:
            tree.set("from_", exp.From(this=scope.sources[0][1].table_expression()))
        if joins:
            tree.set("joins", [
                exp.Join(this=source.table_expression(), on=condition, side=side or None, kind=kind or None)
                for (_join, source, side, kind), condition in zip(joins, join_conditions)
            ])
        if where_sql is not None:
            tree.set("where", exp.Where(this=where_sql))
        if group_sql:
            tree.set("group", exp.Group(expressions=group_sql))
        if having_sql is not None:
            tree.set("having", exp.Having(this=having_sql))
        columns = [OutputColumn(name, f"c{index}", Value(None, value.type, not_null=value.not_null))
                   for index, (name, value) in enumerate(outputs)]
        if distinct_order:
            tree = self.project(Compiled(tree, columns), [_quoted(column.sql_name) for column in columns])
            tree.set("order", exp.Order(expressions=distinct_order))
        elif order_sql:
            tree.set("order", exp.Order(expressions=order_sql))
        self._set_limit(tree, node)
        if with_:
            tree.set("with_", exp.With(expressions=with_))
        return Compiled(tree, columns)

    def _natural_nulls_first(self, desc: bool) -> bool:
        """The engine's own NULL placement, which an index scan yields (PostgreSQL: NULLs largest; SQLite: smallest)."""
        return self.engine.natural_nulls_first(desc)

    def _check_grouped(self, outputs, group_sql, order_sql, having_sql) -> None:
        """In an aggregating SELECT, columns outside aggregate functions must be grouped on.

        PostgreSQL enforces this and SQLite does not; checking here gives the same answer on both.
        """
        groups = {sql.sql() for sql in group_sql}

        def grouped(node: exp.Expression) -> bool:
            if (groups and node.sql() in groups) or isinstance(node, (exp.AggFunc, exp.WithinGroup, exp.Subquery, exp.Exists)):
                return True
            if isinstance(node, exp.Anonymous) and node.name == "hogql_quantile":
                return True
            if isinstance(node, exp.Column):
                return False
            return all(grouped(child) for child in node.iter_expressions())

        for name, value in outputs:
            if not grouped(value.sql):
                raise SandboxError(f"Column {name!r} must be in GROUP BY or inside an aggregate function such as count() or any().")
        for item in order_sql:
            if not grouped(item.this.this if isinstance(item.this, exp.Collate) else item.this):
                raise SandboxError("ORDER BY of an aggregating query must use grouped columns or aggregate functions.")
        if having_sql is not None and not grouped(having_sql):
            raise SandboxError("HAVING must use grouped columns or aggregate functions.")

    def _positional(self, node: exp.Expression, outputs: list[tuple[str, Value]]) -> Optional[Value]:
        """`GROUP BY 1`, `ORDER BY 2`: the SELECT column at that position."""
        if isinstance(node, exp.Literal) and not node.is_string and re.fullmatch(r"[0-9]+", str(node.this)):
            position = int(node.this)
            if not 1 <= position <= len(outputs):
                raise SandboxError(f"Column position {position} is out of range (1 to {len(outputs)}).")
            return outputs[position - 1][1]
        return None

    def _set_limit(self, tree: exp.Expression, node: exp.Expression) -> None:
        limit, offset = node.args.get("limit"), node.args.get("offset")
        if limit is not None:
            self.check(limit, {"expression"})
            tree.set("limit", exp.Limit(expression=exp.Literal.number(min(self.integer(limit.expression, "LIMIT"), MAX_LIMIT))))
        if offset is not None:
            self.check(offset, {"expression"})
            tree.set("offset", exp.Offset(expression=exp.Literal.number(self.integer(offset.expression, "OFFSET"))))

    def set_operation(self, node: exp.Expression, ctes: dict) -> "Compiled":
        self.check(node, SET_OPERATION_CLAUSES)
        ctes, with_ = self._ctes(node.args.get("with_"), ctes)
        left, right = self._operand(node.this, ctes), self._operand(node.expression, ctes)
        if len(left.columns) != len(right.columns):
            raise SandboxError(f"Both sides of {node.key.upper()} must select the same number of columns "
                               f"({len(left.columns)} and {len(right.columns)}).")
        converter = ExprCompiler(self, Scope(self, {}), clause=node.key.upper(), aggregates=False)
        kinds, left_sql, right_sql = [], [], []
        for a, b in zip(left.columns, right.columns):
            kind = converter.common_type([a.value, b.value])
            kinds.append(kind)
            left_sql.append(converter.convert(Value(_quoted(a.sql_name), a.value.type), kind))
            right_sql.append(converter.convert(Value(_quoted(b.sql_name), b.value.type), kind))
        left_tree = left.tree if all(isinstance(sql, exp.Column) for sql in left_sql) else self.project(left, left_sql)
        right_tree = right.tree if all(isinstance(sql, exp.Column) for sql in right_sql) else self.project(right, right_sql)
        # EXCEPT and INTERSECT are always DISTINCT (SQLite has no EXCEPT ALL); bare UNION is UNION DISTINCT.
        distinct = node.args.get("distinct") is not False or not isinstance(node, exp.Union)
        tree: exp.Expression = type(node)(this=left_tree, expression=right_tree, distinct=distinct)
        columns = [OutputColumn(a.name, a.sql_name, Value(None, kind)) for a, kind in zip(left.columns, kinds)]
        if node.args.get("order") is not None or node.args.get("limit") is not None or node.args.get("offset") is not None:
            tree = self._wrap_set_operation(Compiled(tree, columns), node)
        if with_:
            tree.set("with_", exp.With(expressions=with_))
        return Compiled(tree, columns)

    def _operand(self, node: exp.Expression, ctes: dict) -> "Compiled":
        compiled = self.query(node, ctes)
        plain = isinstance(compiled.tree, exp.Select) and not any(
            compiled.tree.args.get(key) is not None for key in ("order", "limit", "offset", "with_"))
        if plain:
            return compiled
        # Compound members with ORDER BY/LIMIT or nested set operations run as derived tables (SQLite needs it).
        return Compiled(self.project(compiled, [_quoted(column.sql_name) for column in compiled.columns]), compiled.columns)

    def project(self, compiled: "Compiled", expressions: list[exp.Expression]) -> exp.Select:
        """SELECT <expressions> AS c0, c1... FROM (<compiled>) AS tN (expressions name its columns unqualified)."""
        alias = self.name("t")
        selected = [exp.Alias(this=sql, alias=exp.to_identifier(column.sql_name, quoted=True))
                    for sql, column in zip(expressions, compiled.columns)]
        return exp.select(*selected).from_(exp.Subquery(this=compiled.tree, alias=exp.TableAlias(this=exp.to_identifier(alias))))

    def _wrap_set_operation(self, compiled: "Compiled", node: exp.Expression) -> exp.Select:
        """ORDER BY / LIMIT of a whole set operation: applied to it as a derived table."""
        wrapper = self.project(compiled, [_quoted(column.sql_name) for column in compiled.columns])
        order = node.args.get("order")
        if order is not None:
            self.check(order, {"expressions"})
            ordered = []
            for item in order.expressions:
                self.check(item, {"this", "desc", "nulls_first"})
                target = item.this
                chain = ExprCompiler.chain(target)
                if isinstance(target, exp.Literal) and not target.is_string and re.fullmatch(r"[0-9]+", str(target.this)):
                    index = int(target.this) - 1
                elif chain is not None and len(chain) == 1:
                    index = next((i for i, column in enumerate(compiled.columns) if column.name == chain[0]), -1)
                else:
                    index = -1
                if not 0 <= index < len(compiled.columns):
                    raise SandboxError(f"ORDER BY of a {node.key.upper()} must name one of its columns: {_describe(target)}")
                column = compiled.columns[index]
                sql = _quoted(column.sql_name)
                ordered.append(exp.Ordered(this=self.engine.binary_order(sql) if column.value.type == STRING else sql,
                                           desc=bool(item.args.get("desc")), nulls_first=bool(item.args.get("nulls_first"))))
            wrapper.set("order", exp.Order(expressions=ordered))
        self._set_limit(wrapper, node)
        return wrapper

    # --- Helpers for expressions ---

    def placeholder_value(self, name: str) -> Any:
        if name.startswith("variables."):
            code_name = name[len("variables."):]
            for variable in self.variables.values():
                if variable.code_name == code_name:
                    return None if variable.isNull else variable.value
            raise SandboxError(f"The variable {code_name!r} is not defined in the query's `variables`.")
        if name in self.values:
            return self.values[name]
        raise SandboxError(f"Unknown placeholder {{{name}}}: use {{filters}}, {{variables.<code_name>}} or a key of `values`.")

    def uuid_text(self, column: exp.Expression) -> exp.Expression:
        """A UUID column as canonical text (SQLite stores Django UUIDs as 32 hex digits)."""
        return self.engine.uuid_text(column)

    def _person_lookup(self, selected, condition_for) -> exp.Subquery:
        alias = self.name("u")
        table = self.engine.persons_source(self.team.id, alias)
        team = exp.EQ(this=_db_column(Person, "team", alias), expression=exp.Literal.number(self.team.id))
        return exp.Subquery(this=exp.select(selected(alias)).from_(table).where(exp.and_(condition_for(alias), team)))

    def person_uuid_text(self, reference: exp.Expression) -> exp.Expression:
        """A person reference (the person's row id) as its UUID text."""
        return self._person_lookup(lambda alias: self.uuid_text(_db_column(Person, "uuid", alias)),
                                   lambda alias: exp.EQ(this=_db_column(Person, "id", alias), expression=reference))

    def person_by_uuid(self, text: Any) -> exp.Expression:
        """The row id of the team's person with that UUID (NULL when there is none)."""
        try:
            value = uuid.UUID(str(text))
        except ValueError:
            return exp.null()
        param = self.params.add(self.engine.uuid_value(value))
        return self._person_lookup(lambda alias: _db_column(Person, "id", alias),
                                   lambda alias: exp.EQ(this=_db_column(Person, "uuid", alias), expression=param))

    def quantile(self, level: float, number: exp.Expression) -> exp.Expression:
        return self.engine.quantile(level, number)

    def json_property(self, column: exp.Expression, keys: list[str]) -> Value:
        """`properties.a` or, nested, `properties.a.b`: a value inside a JSON object, as text (and as a number)."""
        for key in keys[:-1]:
            column = self._json_object(column, key)
        return Value(self.engine.json_text(column, keys[-1], self.params), STRING,
                     number=self.engine.json_number(column.copy(), keys[-1], self.params))

    def _json_object(self, column: exp.Expression, key: str) -> exp.Expression:
        """The JSON object under `key`, else NULL (so that a deeper key of a non-object reads as NULL)."""
        return self.engine.json_object(column, key, self.params)

    def text_as_json(self, sql: exp.Expression) -> exp.Expression:
        return self.engine.text_as_json(sql)


def compile_query(source: Any, team, engine: Engine, *, now: datetime, tz: ZoneInfo, filters=None, variables=None,
                  values=None, default_limit: int = DEFAULT_LIMIT, limit: Optional[int] = None,
                  offset: Optional[int] = None, max_limit: int = MAX_LIMIT, event_conditions=(),
                  events_time_range=None) -> SandboxQuery:
    """HogQL text (or an already parsed SELECT) -> a safe query for `engine`, scoped to `team`.
    `event_conditions` (callables of an SQLContext) add conditions to what {filters} stands for;
    `events_time_range` (lower, upper), when the caller bounds the events of {filters}, bounds the sessions read."""
    if isinstance(source, str) and len(source) > MAX_QUERY_LENGTH:
        raise SandboxError(f"The query is too long (more than {MAX_QUERY_LENGTH} characters).")
    compiler = QueryCompiler(engine, team, now=now, tz=tz, filters=filters, variables=variables, values=values,
                             event_conditions=event_conditions, events_time_range=events_time_range)
    try:
        node = parse_select(source) if isinstance(source, str) else source
        return compiler.compile(node, default_limit=default_limit, limit=limit, offset=offset, max_limit=max_limit)
    except RecursionError:
        raise SandboxError("The query is nested too deeply.") from None
