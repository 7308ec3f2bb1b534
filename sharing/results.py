"""The result a public page shows, read through `insights.results` like every other caller.

- A fresh cached result is shown; a stale one is shown while a background job refreshes it.
- With nothing cached, one viewer computes it now (sharing.throttling bounds how often per shared
  insight); the others get the page without a result, marked pending, and it reloads until the
  result is there. Past the limit, the computation runs in the background instead.
"""
from dataclasses import dataclass

from insights.results import has_definition, insight_results
from queries.api import ExecutionMode

from . import throttling


@dataclass(frozen=True)
class SharedResult:
    fields: dict  # the insight serializer's result fields (`result`, `last_refresh`, `query_status`...)
    pending: bool = False  # nothing to show yet, but it is being computed: the page should poll

    @property
    def error(self) -> str | None:
        status = self.fields.get("query_status") or {}
        return status.get("error_message") or None if status.get("error") else None


def _running(fields: dict) -> bool:
    status = fields.get("query_status")
    return bool(status) and not status.get("complete")


def shared_result(insight) -> SharedResult:
    def run(mode: ExecutionMode) -> dict:
        return insight_results([insight], insight.team, mode, None)[insight.id]

    cached = run(ExecutionMode.FORCE_CACHE)  # never computes
    if not has_definition(insight):
        return SharedResult(cached)
    if cached["is_cached"]:
        # async: a fresh result as is, a stale one along with a background refresh.
        fields = run(ExecutionMode.ASYNC)
        return SharedResult(fields, pending=fields["result"] is None and _running(fields))
    if cached["query_status"] and cached["query_status"].get("error"):
        return SharedResult(cached)  # the engine refuses this query: computing would fail again
    if _running(cached):
        return SharedResult(cached, pending=True)
    if throttling.begin_computation(insight.id):
        try:
            return SharedResult(run(ExecutionMode.ASYNC_EXCEPT_ON_CACHE_MISS))
        finally:
            throttling.end_computation(insight.id)
    if throttling.computation_running(insight.id):
        return SharedResult(cached, pending=True)  # another viewer is computing it
    started = run(ExecutionMode.ASYNC)  # over the limit: in the background
    return SharedResult(started, pending=_running(started))
