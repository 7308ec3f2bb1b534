"""What differs per Django database outside the query engine: one class per database.

The query engine (queries/sql/engine) owns every difference in the SQL it generates. The few other
places that talk to the Django database beyond the ORM (ingestion's person locks and lookups, the
events COPY, table statistics after a bulk load, Python functions SQLite lacks) ask the object
`for_connection()` returns, by what they need, instead of testing which database this is. Adding a
database is one subclass and one entry in `_DATABASES`.
"""
from typing import Callable, Iterable, Sequence

from django.db import connection as default_connection


class Database:
    """SQLite's behaviour (the default database); subclasses override where theirs differs."""

    # Concurrent writers need explicit locks to create the same rows in one order (SQLite runs
    # one writer at a time, so it needs none).
    needs_write_locks = False
    # `COPY ... FROM STDIN` is the bulk insert path.
    copy_from_stdin = False
    # An open transaction holds the database's one write lock (SQLite's IMMEDIATE transactions):
    # waiting inside it for another connection's write can only time out.
    transaction_holds_write_lock = True

    def __init__(self, connection):
        self.connection = connection

    def lock_keys(self, namespace: int, keys: Sequence[int]) -> None:
        """Take transaction-scoped locks on `keys` (32-bit integers) in the given order."""

    def in_values(self, values: Sequence) -> tuple[str, list]:
        """`IN (...)` text and its parameters, for `column {text}` (one placeholder a value)."""
        return f"IN ({', '.join(['%s'] * len(values))})", list(values)

    def utc_text(self, column: str) -> str:
        """A timestamp column as naive UTC ISO text, which `datetime.fromisoformat` reads several
        times faster than the driver converts timestamps (SQLite stores them so already)."""
        return column

    def analyze(self, tables: Iterable[str]) -> None:
        """Refresh the planner's statistics of `tables` after a bulk load (SQLite plans without them)."""

    # Case-insensitive LIKE (SQLite's LIKE already ignores ASCII case) and a collation that orders
    # text by its bytes (SQLite's default).
    case_insensitive_like = "LIKE"
    binary_collation = ""

    def json_object_entries(self, json_column: str) -> tuple[str, str]:
        """(a FROM-clause suffix pairing each row with the entries `j.key`/`j.value` of its JSON
        object column (none when it holds no object), each entry's value as text: strings
        unquoted, anything else as JSON text)."""
        source = f"json_each(CASE WHEN json_type({json_column}) = 'object' THEN {json_column} ELSE '{{}}' END) j"
        value = ("CASE j.type WHEN 'text' THEN j.value WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
                 "WHEN 'null' THEN 'null' ELSE CAST(j.value AS TEXT) END")
        return f", {source}", value

    def define_function(self, name: str, arity: int, function: Callable) -> None:
        """Make a Python function callable from SQL on this connection, where the database has no
        such function of its own (SQLite); databases that have it natively ignore this."""
        self.connection.connection.create_function(name, arity, function, deterministic=True)


class PostgresDatabase(Database):
    needs_write_locks = True
    copy_from_stdin = True
    transaction_holds_write_lock = False

    def lock_keys(self, namespace, keys):
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, key) FROM unnest(%s::integer[]) WITH ORDINALITY AS keys(key, n) ORDER BY n",
                [namespace, list(keys)],
            )

    def in_values(self, values):
        # One array parameter: the same statement text whatever the count (one cached plan).
        return "= ANY(%s)", [list(values)]

    def utc_text(self, column):
        return f"({column} AT TIME ZONE 'UTC')::text"

    def analyze(self, tables):
        ops = self.connection.ops
        with self.connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"ANALYZE {ops.quote_name(table)}")

    case_insensitive_like = "ILIKE"
    binary_collation = ' COLLATE "C"'

    def json_object_entries(self, json_column):
        source = (f"CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof({json_column}) = 'object' "
                  f"THEN {json_column} ELSE '{{}}'::jsonb END) j")
        return f" {source}", "CASE WHEN jsonb_typeof(j.value) = 'string' THEN j.value #>> '{}' ELSE j.value::text END"

    def define_function(self, name, arity, function):
        return None  # pg_trgm provides the trigram functions (insights migration 0002)


_DATABASES = {"sqlite": Database, "postgresql": PostgresDatabase}


def for_connection(connection=None) -> Database:
    connection = connection or default_connection
    try:
        return _DATABASES[connection.vendor](connection)
    except KeyError:
        raise NotImplementedError(f"Unsupported database vendor {connection.vendor!r}") from None
