"""HogQLQuery: SQL insights. The user's SELECT runs through the sandbox compiler (queries.sql.sandbox).

The response follows PostHog's HogQLQueryResponse: `results` (rows), `columns`, `types`
([name, ClickHouse type] pairs), `hogql` (the query as run, with its LIMIT), and, when the query
has no LIMIT of its own, `hasMore`, `limit` and `offset` (100 rows by default, one more is fetched
to know whether there are more).
"""
from typing import Optional

from ..schema import HogQLQuery
from ..sql.sandbox import clickhouse_type, compile_query, format_rows
from .base import QueryRunner, register


def run_sandboxed(runner: QueryRunner, compiled) -> dict:
    """Run a compiled sandbox query; the response fields shared by HogQLQuery and EventsQuery."""
    rows = runner.run_sql(compiled.tree, compiled.params)
    has_more = compiled.paginated and len(rows) > compiled.limit
    if compiled.paginated:
        rows = rows[:compiled.limit]
    body = {
        "results": format_rows(rows, compiled.value_types, runner.team, runner.tz),
        "columns": compiled.columns,
        "types": [[name, clickhouse_type(kind, runner.tz)] for name, kind in zip(compiled.columns, compiled.value_types)],
        "hogql": compiled.hogql,
        "modifiers": runner.query.modifiers or {},
        "error": None,
    }
    if compiled.paginated:
        body.update(hasMore=has_more, limit=compiled.limit, offset=compiled.offset)
    return body


@register
class HogQLQueryRunner(QueryRunner):
    kind = "HogQLQuery"
    query_model = HogQLQuery

    def staleness_interval(self) -> Optional[str]:
        # PostHog caches SQL like a `day` interval query: 6 h target age, 12 h lazy.
        return "day"

    def calculate(self) -> dict:
        query: HogQLQuery = self.query
        compiled = compile_query(
            query.query, self.team, self.engine, now=self.now, tz=self.tz,
            filters=query.filters, variables=query.variables, values=query.values,
            default_limit=self.limit_context.default_rows, max_limit=self.limit_context.max_rows,
        )
        return {**run_sandboxed(self, compiled), "query": query.query}
