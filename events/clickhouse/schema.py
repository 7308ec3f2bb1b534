"""ClickHouse tables for events, persons and distinct ids, as versioned migrations.

Column names match the Django models' columns (`events_event` etc.), so the SQL the runners
build reads the same columns on every engine. `manage.py migrate_clickhouse` applies what is
pending and records it in `clickhouse_migrations`.

- `events`: ReplacingMergeTree ordered for the runners' access paths (team, event, day, then the
  actor); a retried event (same uuid) has the same sorting key, so merges drop the copy (and
  ingestion skips uuids already stored, so queries never see one).
- `persons`, `person_distinct_ids`: mirrors of the Django tables, newest `version` wins;
  a deleted person is a row with `is_deleted = 1`.
- `person_distinct_id_overrides`: distinct ids whose person changed after events were written
  (merges, a personless id getting a person); joined at query time instead of rewriting events.
"""
from typing import Callable, Union

from .client import ClickHouseClient

EVENTS = "events"
PERSONS = "persons"
PERSON_DISTINCT_IDS = "person_distinct_ids"
PERSON_DISTINCT_ID_OVERRIDES = "person_distinct_id_overrides"
MIGRATIONS_TABLE = "clickhouse_migrations"

_0001 = [
    f"""
    CREATE TABLE IF NOT EXISTS {EVENTS} (
        uuid UUID,
        team_id Int64,
        event String,
        distinct_id String,
        properties String,
        timestamp DateTime64(6, 'UTC'),
        person_id Nullable(Int64),
        session_id String,
        created_at DateTime64(6, 'UTC')
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(timestamp)
    ORDER BY (team_id, event, toDate(timestamp), cityHash64(distinct_id), uuid)
    """,
    f"""
    CREATE TABLE IF NOT EXISTS {PERSONS} (
        id Int64,
        uuid UUID,
        team_id Int64,
        created_at DateTime64(6, 'UTC'),
        properties String,
        is_identified Bool,
        version Int64,
        is_deleted UInt8 DEFAULT 0
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (team_id, id)
    """,
    f"""
    CREATE TABLE IF NOT EXISTS {PERSON_DISTINCT_IDS} (
        team_id Int64,
        distinct_id String,
        person_id Int64,
        version Int64,
        is_deleted UInt8 DEFAULT 0
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (team_id, distinct_id)
    """,
    f"""
    CREATE TABLE IF NOT EXISTS {PERSON_DISTINCT_ID_OVERRIDES} (
        team_id Int64,
        distinct_id String,
        person_id Int64,
        version Int64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (team_id, distinct_id)
    """,
]

# (name, statements or a function of the client) in order; never edit one that has shipped.
Step = Union[list[str], Callable[[ClickHouseClient], None]]


def _0002(client: ClickHouseClient) -> None:
    from .materialized import materialize_defaults

    materialize_defaults(client)


MIGRATIONS: list[tuple[str, Step]] = [
    ("0001_initial", _0001),
    ("0002_materialized_columns", _0002),
]


def applied(client: ClickHouseClient) -> set[str]:
    client.command(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY name"
    )
    return {row[0] for row in client.query(f"SELECT name FROM {MIGRATIONS_TABLE}").rows}


def migrate(client: ClickHouseClient) -> list[str]:
    """Apply the pending migrations; returns their names."""
    done = applied(client)
    ran = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        if callable(step):
            step(client)
        else:
            for statement in step:
                client.command(statement)
        client.insert(MIGRATIONS_TABLE, [(name,)], ["name"])
        ran.append(name)
    return ran


TABLES = (EVENTS, PERSONS, PERSON_DISTINCT_IDS, PERSON_DISTINCT_ID_OVERRIDES)


def truncate(client: ClickHouseClient) -> None:
    """Empty every data table (tests)."""
    for table in TABLES:
        client.command(f"TRUNCATE TABLE IF EXISTS {table}")
