"""Database engines: one `Engine` subclass per database; `get_engine` picks the connection's."""
from django.db import connection as default_connection

from events.clickhouse import is_enabled as clickhouse_enabled

from .base import NUMERIC_TEXT_REGEX, Engine, EngineTimeout, Params, case, is_not_false, is_true, paren, window
from .postgres import PostgresEngine
from .sqlite import SQLiteEngine

__all__ = ["NUMERIC_TEXT_REGEX", "Engine", "EngineTimeout", "Params", "PostgresEngine", "SQLiteEngine", "case", "get_engine",
           "is_not_false", "is_true", "paren", "window"]

_ENGINES = {"sqlite": SQLiteEngine, "postgresql": PostgresEngine}


def get_engine(connection=None) -> Engine:
    """The engine event queries run on: ClickHouse when it is the events store, else the Django
    database's (also `get_engine(connection)` for SQL over Django's own tables)."""
    if connection is None and clickhouse_enabled():
        from .clickhouse import ClickHouseEngine

        return ClickHouseEngine()
    connection = connection or default_connection
    try:
        return _ENGINES[connection.vendor](connection)
    except KeyError:
        raise NotImplementedError(f"No query engine for database vendor {connection.vendor!r}") from None
