"""TrendsQuery: `runner` (validation, periods, caching hooks), `query_builder` (the SQL of one
series in one period), `breakdown` (breakdown specs and values) and `display` (result objects)."""
from .runner import TrendsQueryRunner

__all__ = ["TrendsQueryRunner"]
