"""Query runners by node kind. A new kind subclasses QueryRunner and is decorated with @register."""
from . import trends  # noqa: F401  (registers TrendsQueryRunner)
from . import lifecycle, paths, retention, stickiness  # noqa: F401  (register the Lifecycle, Paths, Retention and Stickiness runners)
from . import events_query, hogql_query  # noqa: F401  (register the EventsQuery and HogQLQuery runners)
from . import funnels  # noqa: F401  (registers FunnelsQueryRunner)
from .base import RUNNERS, QueryRunner, register

__all__ = ["RUNNERS", "QueryRunner", "register"]
