"""SQL insights: a HogQL SELECT parsed, checked and compiled into safe SQL for our engines.

Security model: allow-list by construction. The user's SQL is parsed (sqlglot, a ClickHouse
dialect extended with HogQL's `properties.$key` identifiers, `=~` operators and `{placeholders}`)
and then *compiled*: every node of the output tree is built here from a known node of the input,
and any input node, clause, table or function without a handler is refused with a 400 that names
it. So the output can only contain:
  - the events store tables, each wrapped in a derived table filtered on the team
    (`(SELECT ... FROM events_event WHERE team_id = <team>) AS t3`), at every reference: FROM,
    JOIN, subqueries, CTEs and UNION branches alike;
  - identifiers generated here (t0, c0, w0...), never the user's own names;
  - the user's strings only as bound parameters, and numbers re-rendered from Python values;
  - the functions mapped below.
Comments, extra statements, DDL/DML, other tables (pg_*, sqlite_*, information_schema, system.*)
and table functions (url(), file()...) cannot pass. Runtime is bounded by the engine's timeout and
the returned rows by LIMIT (default 100, max 50 000).

Modules, in the order a query goes through them: `parsing` (the HogQL dialect), `statements`
(SELECTs, set operations, CTEs, scopes), `tables` (what FROM reads), `expressions` (one clause's
expressions) with `functions` (the function table) and `time_sql` (time zones), `values` (typed
SQL and the sandbox's errors and limits), `results` (rows as PostHog returns them).
"""
from .functions import AGGREGATES
from .parsing import parse_expression, parse_select, to_hogql
from .results import clickhouse_type, format_rows
from .statements import MAX_NESTING, MAX_QUERY_LENGTH, SandboxQuery, compile_query
from .values import DEFAULT_LIMIT, MAX_LIMIT, SandboxError

__all__ = ["AGGREGATES", "DEFAULT_LIMIT", "MAX_LIMIT", "MAX_NESTING", "MAX_QUERY_LENGTH", "SandboxError", "SandboxQuery",
           "clickhouse_type", "compile_query", "format_rows", "parse_expression", "parse_select", "to_hogql"]
