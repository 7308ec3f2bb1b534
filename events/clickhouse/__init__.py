"""ClickHouse as the event store: the client (in-process chDB or a server over HTTP) and its schema.

`settings.EVENTS_ENGINE` picks where events live and where insights compute:
- "" (default): the Django database (SQLite or PostgreSQL), as before;
- "chdb": ClickHouse in this process (chDB), data under `CLICKHOUSE_DATA_DIR`;
- "clickhouse": a ClickHouse server at `CLICKHOUSE_URL` (set by default when the URL is).
Persons and distinct ids stay in the Django database (their source of truth) and are mirrored
into ClickHouse for queries.
"""
from .client import ClickHouseClient, ClickHouseError, get_client, is_enabled, reset_client

__all__ = ["ClickHouseClient", "ClickHouseError", "get_client", "is_enabled", "reset_client"]
