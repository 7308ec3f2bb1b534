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

With `settings.CLICKHOUSE_CLUSTER` (a server only) every statement runs `ON CLUSTER`, as PostHog
lays out its tables: events live in `sharded_events` (ReplicatedReplacingMergeTree, one shard
per node group) behind a `Distributed` table `events` that sends each event to the shard of
`cityHash64(distinct_id)`, so a distinct id's events and their retries land on one shard (where
ReplacingMergeTree can drop the copies). Persons, distinct ids and overrides are replicated to
every node (one "noshard" replication path), so each shard joins them locally. Readers and
writers always use `events`; only DDL names the local table. Without a cluster the DDL is the
single-node DDL, unchanged.
"""
from typing import Callable

from django.conf import settings

from .client import ClickHouseClient

EVENTS = "events"
SHARDED_EVENTS = "sharded_events"
PERSONS = "persons"
PERSON_DISTINCT_IDS = "person_distinct_ids"
PERSON_DISTINCT_ID_OVERRIDES = "person_distinct_id_overrides"
GROUPS = "groups"
COHORT_PEOPLE = "cohortpeople"
MIGRATIONS_TABLE = "clickhouse_migrations"
UUID_INDEX = "uuid_bloom"
CREATED_AT_INDEX = "created_at_minmax"


def configured_cluster() -> str:
    return settings.CLICKHOUSE_CLUSTER


def on_cluster(cluster: str) -> str:
    return f" ON CLUSTER '{_identifier(cluster)}'" if cluster else ""


def events_table(cluster: str) -> str:
    """The table holding the event rows: itself on one node, the local shard table on a cluster."""
    return SHARDED_EVENTS if cluster else EVENTS


def _identifier(name: str) -> str:
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"Invalid ClickHouse cluster name {name!r}")
    return name


def _engine(engine: str, cluster: str, *, sharded: bool, version: str = "") -> str:
    """`engine` (e.g. ReplacingMergeTree) on one node, its Replicated form on a cluster."""
    if not cluster:
        return f"{engine}({version})" if version else engine
    # {shard}/{replica} are each server's macros; tables on every node share one "noshard" path.
    path = "/clickhouse/tables/{shard}/{database}.{table}" if sharded else "/clickhouse/tables/noshard/{database}.{table}"
    replica = "{replica}" if sharded else "{replica}-{shard}"
    arguments = ", ".join([f"'{path}'", f"'{replica}'"] + ([version] if version else []))
    return f"Replicated{engine}({arguments})"


def _0001(cluster: str) -> list[str]:
    oc = on_cluster(cluster)
    statements = [
        f"""
    CREATE TABLE IF NOT EXISTS {events_table(cluster)}{oc} (
        uuid UUID,
        team_id Int64,
        event String,
        distinct_id String,
        properties String,
        timestamp DateTime64(6, 'UTC'),
        person_id Nullable(Int64),
        session_id String,
        created_at DateTime64(6, 'UTC')
    ) ENGINE = {_engine("ReplacingMergeTree", cluster, sharded=True)}
    PARTITION BY toYYYYMM(timestamp)
    ORDER BY (team_id, event, toDate(timestamp), cityHash64(distinct_id), uuid)
    """,
        f"""
    CREATE TABLE IF NOT EXISTS {PERSONS}{oc} (
        id Int64,
        uuid UUID,
        team_id Int64,
        created_at DateTime64(6, 'UTC'),
        properties String,
        is_identified Bool,
        version Int64,
        is_deleted UInt8 DEFAULT 0
    ) ENGINE = {_engine("ReplacingMergeTree", cluster, sharded=False, version="version")}
    ORDER BY (team_id, id)
    """,
        f"""
    CREATE TABLE IF NOT EXISTS {PERSON_DISTINCT_IDS}{oc} (
        team_id Int64,
        distinct_id String,
        person_id Int64,
        version Int64,
        is_deleted UInt8 DEFAULT 0
    ) ENGINE = {_engine("ReplacingMergeTree", cluster, sharded=False, version="version")}
    ORDER BY (team_id, distinct_id)
    """,
        f"""
    CREATE TABLE IF NOT EXISTS {PERSON_DISTINCT_ID_OVERRIDES}{oc} (
        team_id Int64,
        distinct_id String,
        person_id Int64,
        version Int64
    ) ENGINE = {_engine("ReplacingMergeTree", cluster, sharded=False, version="version")}
    ORDER BY (team_id, distinct_id)
    """,
    ]
    if cluster:
        # Same columns as the shard tables; an insert is routed to the shard of its distinct id.
        statements.insert(1, f"""
    CREATE TABLE IF NOT EXISTS {EVENTS}{oc} AS {SHARDED_EVENTS}
    ENGINE = Distributed('{_identifier(cluster)}', currentDatabase(), {SHARDED_EVENTS}, cityHash64(distinct_id))
    """)
    return statements


def _0002(cluster: str) -> list[str]:
    from .materialized import DEFAULT_PROPERTIES, materialize_statements

    return [statement for key in DEFAULT_PROPERTIES for statement in materialize_statements(key, cluster)]


def _0003(cluster: str) -> list[str]:
    """A bloom filter on uuid: ingestion looks up a batch's uuids to skip those stored before."""
    table, oc = events_table(cluster), on_cluster(cluster)
    return [
        f"ALTER TABLE {table}{oc} ADD INDEX IF NOT EXISTS {UUID_INDEX} uuid TYPE bloom_filter(0.001) GRANULARITY 1",
        f"ALTER TABLE {table}{oc} MATERIALIZE INDEX {UUID_INDEX}",
    ]


def _0004(cluster: str) -> list[str]:
    """Groups mirrored from the Django `groups_group` table (queries join their properties);
    newest `version` wins, a deleted group is a row with `is_deleted = 1`."""
    return [f"""
    CREATE TABLE IF NOT EXISTS {GROUPS}{on_cluster(cluster)} (
        team_id Int64,
        group_type_index Int64,
        group_key String,
        group_properties String,
        created_at DateTime64(6, 'UTC'),
        version Int64,
        is_deleted UInt8 DEFAULT 0
    ) ENGINE = {_engine("ReplacingMergeTree", cluster, sharded=False, version="version")}
    ORDER BY (team_id, group_type_index, group_key)
    """]


def _0005(cluster: str) -> list[str]:
    """Cohort members mirrored from the Django `CohortPeople` table (queries read members of a
    cohort's current version; older versions are only left behind, never read)."""
    return [f"""
    CREATE TABLE IF NOT EXISTS {COHORT_PEOPLE}{on_cluster(cluster)} (
        cohort_id Int64,
        person_id Int64,
        version Int64
    ) ENGINE = {_engine("MergeTree", cluster, sharded=False)}
    ORDER BY (cohort_id, version, person_id)
    """]


def _0006(cluster: str) -> list[str]:
    """A minmax index on created_at: ingestion's uuid lookup reads only the parts written in its
    window (writer.RETRY_WINDOW), not every event of the day."""
    table, oc = events_table(cluster), on_cluster(cluster)
    return [
        f"ALTER TABLE {table}{oc} ADD INDEX IF NOT EXISTS {CREATED_AT_INDEX} created_at TYPE minmax GRANULARITY 1",
        f"ALTER TABLE {table}{oc} MATERIALIZE INDEX {CREATED_AT_INDEX}",
    ]


# (name, the statements for a cluster name or "" for one node) in order; never edit one that has shipped.
MIGRATIONS: list[tuple[str, Callable[[str], list[str]]]] = [
    ("0001_initial", _0001),
    ("0002_materialized_columns", _0002),
    ("0003_uuid_bloom_filter", _0003),
    ("0004_groups", _0004),
    ("0005_cohortpeople", _0005),
    ("0006_created_at_index", _0006),
]


def render(cluster: str = "") -> list[tuple[str, list[str]]]:
    """Every migration's statements for `cluster` (tests and review; no server needed)."""
    return [(name, step(cluster)) for name, step in MIGRATIONS]


def _migrations_table(cluster: str) -> str:
    engine = _engine("MergeTree", cluster, sharded=False)
    return (f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}{on_cluster(cluster)} "
            f"(name String, applied_at DateTime DEFAULT now()) ENGINE = {engine} ORDER BY name")


def applied(client: ClickHouseClient, cluster: str | None = None) -> set[str]:
    client.command(_migrations_table(configured_cluster() if cluster is None else cluster))
    return {row[0] for row in client.query(f"SELECT name FROM {MIGRATIONS_TABLE}").rows}


def migrate(client: ClickHouseClient, cluster: str | None = None) -> list[str]:
    """Apply the pending migrations (ON CLUSTER `settings.CLICKHOUSE_CLUSTER` when set); returns their names."""
    cluster = configured_cluster() if cluster is None else cluster
    done = applied(client, cluster)
    ran = []
    for name, step in MIGRATIONS:
        if name in done:
            continue
        for statement in step(cluster):
            client.command(statement)
        client.insert(MIGRATIONS_TABLE, [(name,)], ["name"])
        ran.append(name)
    if ran:
        from .materialized import forget_columns

        forget_columns()
    return ran


def data_tables(cluster: str = "") -> tuple[str, ...]:
    return (events_table(cluster), PERSONS, PERSON_DISTINCT_IDS, PERSON_DISTINCT_ID_OVERRIDES, GROUPS, COHORT_PEOPLE)


TABLES = data_tables()


def truncate(client: ClickHouseClient, cluster: str | None = None) -> None:
    """Empty every data table (tests)."""
    cluster = configured_cluster() if cluster is None else cluster
    for table in data_tables(cluster):
        client.command(f"TRUNCATE TABLE IF EXISTS {table}{on_cluster(cluster)}")
