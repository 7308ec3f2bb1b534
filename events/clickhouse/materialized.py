"""Materialized columns: hot event properties stored as their own columns, computed at insert.

A property's column holds exactly what the engine's property-text expression gives (strings
unquoted, numbers and booleans as JSON text, null or missing as NULL), so the engine can read
the column instead of parsing `properties` without changing any result. Each column's COMMENT
names its property; the engine reads the mapping from `system.columns` (cached per process).
"""
import hashlib
import re
import threading

from .client import ClickHouseClient, quote
from .schema import EVENTS, configured_cluster, events_table, on_cluster

COMMENT_PREFIX = "property:"
DEFAULT_PROPERTIES = ("$browser", "$os", "$device_type", "$current_url", "$pathname", "$host", "$referring_domain",
                      "$session_id", "$screen_name")
_SIMPLE_KEY = re.compile(r"^[$\w]{1,60}$")


def property_text_sql(key: str, column: str = "properties") -> str:
    """ClickHouse SQL for a JSON property as text (the engine's `json_text` for a constant key)."""
    k = quote(key)
    raw = f"JSONExtractRaw({column}, {k})"
    return f"if(startsWith({raw}, '\"'), JSONExtractString({column}, {k}), nullIf(nullIf({raw}, ''), 'null'))"


def column_name(key: str) -> str:
    if _SIMPLE_KEY.match(key):
        return f"mat_{key}"
    return "mat_" + hashlib.sha1(key.encode()).hexdigest()[:16]


_cache: dict[int, dict[str, str]] = {}
_lock = threading.Lock()


def materialized_columns(client: ClickHouseClient) -> dict[str, str]:
    """property key -> column name, for the events table (read once per client)."""
    found = _cache.get(id(client))
    if found is None:
        rows = client.query(
            "SELECT name, comment FROM system.columns WHERE database = currentDatabase() "
            f"AND table = {quote(EVENTS)} AND startsWith(comment, {quote(COMMENT_PREFIX)})"
        ).rows
        found = {comment[len(COMMENT_PREFIX):]: name for name, comment in rows}
        with _lock:
            _cache[id(client)] = found
    return found


def materialize_statements(key: str, cluster: str = "") -> list[str]:
    """The DDL adding property `key`'s column. On a cluster the shard tables compute it and the
    Distributed table declares it as a plain column with the same comment, so readers find it."""
    name = column_name(key)
    table, oc = events_table(cluster), on_cluster(cluster)
    comment = quote(COMMENT_PREFIX + key)
    statements = [
        f"ALTER TABLE {table}{oc} ADD COLUMN IF NOT EXISTS `{name}` Nullable(String) "
        f"MATERIALIZED {property_text_sql(key)} COMMENT {comment}",
        f"ALTER TABLE {table}{oc} MATERIALIZE COLUMN `{name}`",
    ]
    if cluster:
        statements.append(f"ALTER TABLE {EVENTS}{oc} ADD COLUMN IF NOT EXISTS `{name}` Nullable(String) COMMENT {comment}")
    return statements


def materialize(client: ClickHouseClient, key: str, cluster: str | None = None) -> str:
    """Add (if missing) the column for property `key`; existing parts fill it on merge, and
    `MATERIALIZE COLUMN` fills them now. Returns the column name."""
    for statement in materialize_statements(key, configured_cluster() if cluster is None else cluster):
        client.command(statement)
    forget_columns()
    return column_name(key)


_INT_RANGE = range(-(2**63), 2**64)
UNKNOWN = object()  # a value whose column text only ClickHouse can tell (see `property_text`)


def property_text(value):
    """What `property_text_sql` gives for a property whose JSON value is `value` (Python's decoding
    of the event's properties), or UNKNOWN. ClickHouse re-serializes numbers and nested values in
    its own way (1.0 as `1`, `{"a":1}` without spaces), so only text it keeps as is is known here:
    strings, null or missing, booleans and integers within its 64-bit range."""
    if value is None or value.__class__ is str:
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value.__class__ is int and value in _INT_RANGE:
        return str(value)
    return UNKNOWN


def forget_columns() -> None:
    """Read the columns again on next use (after DDL)."""
    with _lock:
        _cache.clear()
