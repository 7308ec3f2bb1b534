"""The runner framework: one QueryRunner subclass per query kind.

A runner knows its query model, how to compute the response body (`calculate`), and the inputs
of caching: the cache payload, the staleness interval and the end of its date range. The
execution modes, cache and async jobs (queries.execution) work on any runner, so funnels,
retention, lifecycle, stickiness, paths and SQL runners only implement these hooks and register.
"""
import hashlib
import json
import math
from datetime import datetime, timedelta, timezone
from typing import Callable, ClassVar, Iterable, Optional

from django.db import DatabaseError
from rest_framework.exceptions import APIException, ValidationError
from sqlglot import exp

from .. import clock, conf
from ..limit_context import LimitContext
from ..schema import SchemaModel
from ..sql.actions import ActionCatalog
from ..sql.cohorts import cohort_versions
from ..sql.engine import Engine, EngineTimeout, Params, get_engine
from ..wire import response_value  # noqa: F401  (the runners' formatter, re-exported)

CACHE_VERSION = 1


class UnsupportedQuery(ValidationError):
    """A valid query of a kind, or with a feature, this server cannot compute (400)."""


class QueryTimeout(APIException):
    status_code = 504
    default_code = "timeout"
    default_detail = "The query took too long to compute."


class QueryCancelled(Exception):
    """The query was cancelled while its SQL ran."""


class QueryRunner:
    kind: ClassVar[str]
    query_model: ClassVar[type[SchemaModel]]

    def __init__(self, query: SchemaModel, team, *, now: Optional[datetime] = None, engine: Optional[Engine] = None):
        self.query = query
        self.team = team
        self.now = now or clock.now()
        self.tz = clock.team_timezone(team)
        self.week_start_day = clock.week_start_day(team)
        self._engine = engine
        self.timeout: float = conf.query_timeout_seconds()
        self.limit_context = LimitContext.QUERY  # row caps of SQL and events queries
        self.cancel_check: Optional[Callable[[], bool]] = None
        self.executed_sql: list[str] = []

    @property
    def actions(self) -> ActionCatalog:
        """The actions the query references, loaded once per runner."""
        if getattr(self, "_actions", None) is None:
            self._actions = ActionCatalog.for_query(self.team, self.query)
        return self._actions

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = get_engine()
        return self._engine

    # --- Caching inputs ----------------------------------------------------------------------

    def cache_payload(self) -> dict:
        query = self.query.model_dump(mode="json", exclude_none=True, by_alias=True)
        query.pop("tags", None)
        return {
            "query_runner": type(self).__name__,
            "query": query,
            "team_id": self.team.id,
            "timezone": self.team.timezone,
            "week_start_day": self.week_start_day,
            "version": CACHE_VERSION,
            # Editing an action changes the results of every query that references it.
            **({"actions": self.actions.versions()} if self.actions.actions else {}),
            # So does recalculating (or editing a static) cohort it filters or breaks down by.
            **({"cohorts": cohorts} if (cohorts := cohort_versions(self.team, self.query)) else {}),
            # Other row caps give other results; the usual context keeps the keys it always had.
            **({"limit_context": self.limit_context.value} if self.limit_context is not LimitContext.QUERY else {}),
        }

    def cache_key(self) -> str:
        payload = json.dumps(self.cache_payload(), sort_keys=True, separators=(",", ":"), default=str)
        return "cache_" + hashlib.md5(f"query_{payload}".encode()).hexdigest()

    def covered_range(self) -> Optional[tuple[datetime, datetime, str]]:
        """(start, end, interval name) of the date range the results cover; None for queries
        without one (SQL, events). Runners over a date range override this one hook."""
        return None

    def staleness_interval(self) -> Optional[str]:
        """The interval whose staleness threshold applies (PostHog: `query_date_range.interval_name`)."""
        covered = self.covered_range()
        return covered[2] if covered else "minute"

    def staleness_date_to(self) -> Optional[datetime]:
        """End of the queried range; a result computed after it ended never goes stale."""
        covered = self.covered_range()
        return covered[1] if covered else None

    def refresh_frequency(self) -> timedelta:
        """Minimum time between client-requested recalculations (`next_allowed_client_refresh`):
        3 minutes for hourly or short (<= 7 days) ranges, else 15 (PostHog's insight runners);
        1 minute without a date range."""
        covered = self.covered_range()
        if covered is None:
            return timedelta(minutes=1)
        start, end, interval = covered
        days = math.ceil((end - start).total_seconds() / 86400)
        if interval == "hour" or days <= 7:
            return timedelta(minutes=3)
        return timedelta(minutes=15)

    def earliest_event(self, event_names: Iterable[Optional[str]] = (None,), *,
                       after: Optional[datetime] = None) -> Optional[datetime]:
        """The team's first event timestamp (the start of an "all time" range), among events of
        the given names when none of them is None (an "all events" entity), after `after`."""
        # Through the engine: on ClickHouse the events are not in the Django database.
        from ..sql.context import SQLContext

        context = SQLContext(self.engine, self.team)
        conditions = [context.team_filter()]
        if after is not None:
            conditions.append(exp.GT(this=context.event_column("timestamp"), expression=self.engine.timestamp(after, context.params)))
        names = set(event_names)
        if None not in names:
            conditions.append(exp.In(this=context.event_column("event"), expressions=[context.param(name) for name in sorted(names)]))
        select = exp.select(exp.Min(this=context.event_column("timestamp"))).from_(context.events_table()).where(exp.and_(*conditions))
        [(earliest,)] = self.engine.execute(select, context.params, timeout=self.timeout)
        if isinstance(earliest, str):  # SQLite: naive UTC text
            earliest = datetime.fromisoformat(earliest).replace(tzinfo=timezone.utc)
        return earliest

    # --- Computation ---------------------------------------------------------------------------

    def calculate(self) -> dict:
        """The response body (`results`, `hasMore`, `hogql`, ...), without cache metadata."""
        raise NotImplementedError

    def run_sql(self, tree, params: Params) -> list[tuple]:
        """Run one generated query; failures become clear API errors, never a 500."""
        try:
            self.executed_sql.append(self.engine.readable(tree, params))
            return self.engine.execute(tree, params, timeout=self.timeout, cancel_check=self.cancel_check)
        except RecursionError:
            raise ValidationError("The query is nested too deeply.") from None
        except DatabaseError as error:
            if self.cancel_check and self.cancel_check():
                raise QueryCancelled() from error
            raise database_error(error) from error


STOPPED_BY_DATABASE = ("interrupted", "statement timeout", "canceling statement", "was cancelled")


def database_error(error: DatabaseError) -> APIException:
    """The API error for a generated statement the database failed: a timeout, or a 400 saying why."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    # A statement stopped by the database (a timeout, or an operator's cancel/KILL the API did not ask
    # for: PostgreSQL's "canceling statement", ClickHouse's "was cancelled") is no fault of the query.
    if isinstance(error, EngineTimeout) or any(sign in message for sign in STOPPED_BY_DATABASE):
        return QueryTimeout()
    return ValidationError(f"The query could not be computed: {message}")


RUNNERS: dict[str, type[QueryRunner]] = {}


def register(runner: type[QueryRunner]) -> type[QueryRunner]:
    RUNNERS[runner.kind] = runner
    return runner


