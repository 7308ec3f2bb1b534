"""Query runners by node kind. A new kind subclasses QueryRunner and is decorated with @register."""
from . import trends  # noqa: F401  (registers TrendsQueryRunner)
from . import lifecycle, retention, stickiness  # noqa: F401  (register the Lifecycle, Retention and Stickiness runners)
from .base import RUNNERS, QueryRunner, register

__all__ = ["RUNNERS", "QueryRunner", "register"]
