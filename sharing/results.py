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
    return shared_results([insight], insight.team)[insight.id]


def shared_results(insights: list, team, contexts: dict | None = None) -> dict[int, SharedResult]:
    """What a public page shows for each insight (a dashboard's tiles in their `contexts`), read
    in as few calls of `insight_results` as the rules above allow."""

    def run(mode: ExecutionMode, subset: list) -> dict:
        return insight_results(subset, team, mode, None, contexts=contexts) if subset else {}

    cached = run(ExecutionMode.FORCE_CACHE, insights)  # never computes
    shown: dict[int, SharedResult] = {}
    fresh, missing = [], []
    for insight in insights:
        fields = cached[insight.id]
        if not has_definition(insight) or (fields["query_status"] and fields["query_status"].get("error")):
            shown[insight.id] = SharedResult(fields)  # nothing to compute, or the engine refuses it
        elif fields["is_cached"]:
            fresh.append(insight)
        elif _running(fields):
            shown[insight.id] = SharedResult(fields, pending=True)
        else:
            missing.append(insight)
    # async: a fresh result as is, a stale one along with a background refresh.
    for insight_id, fields in run(ExecutionMode.ASYNC, fresh).items():
        shown[insight_id] = SharedResult(fields, pending=fields["result"] is None and _running(fields))
    now = [insight for insight in missing if throttling.begin_computation(insight.id)]
    try:
        shown |= {insight_id: SharedResult(fields) for insight_id, fields in run(ExecutionMode.ASYNC_EXCEPT_ON_CACHE_MISS, now).items()}
    finally:
        for insight in now:
            throttling.end_computation(insight.id)
    later = []
    for insight in missing:
        if insight in now:
            continue
        if throttling.computation_running(insight.id):
            shown[insight.id] = SharedResult(cached[insight.id], pending=True)  # another viewer is computing it
        else:
            later.append(insight)
    for insight_id, fields in run(ExecutionMode.ASYNC, later).items():  # over the limit: in the background
        shown[insight_id] = SharedResult(fields, pending=_running(fields))
    return shown
