"""ClickHouse DDL: single-node statements as shipped, and the cluster layout (rendered only: no
cluster runs here) of replicated shards behind a Distributed `events` table."""
import pytest

from events.clickhouse.materialized import materialize_statements
from events.clickhouse.schema import MIGRATIONS, render

# The shipped single-node 0001 (migrations never change once shipped).
SHIPPED_0001 = [
    """
    CREATE TABLE IF NOT EXISTS events (
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
    """
    CREATE TABLE IF NOT EXISTS persons (
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
    """
    CREATE TABLE IF NOT EXISTS person_distinct_ids (
        team_id Int64,
        distinct_id String,
        person_id Int64,
        version Int64,
        is_deleted UInt8 DEFAULT 0
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (team_id, distinct_id)
    """,
    """
    CREATE TABLE IF NOT EXISTS person_distinct_id_overrides (
        team_id Int64,
        distinct_id String,
        person_id Int64,
        version Int64
    ) ENGINE = ReplacingMergeTree(version)
    ORDER BY (team_id, distinct_id)
    """,
]


def statements(cluster):
    return {name: step for name, step in render(cluster)}


def test_single_node_ddl_is_unchanged():
    single = statements("")
    assert single["0001_initial"] == SHIPPED_0001
    browser = single["0002_materialized_columns"][:2]
    assert browser[0].startswith("ALTER TABLE events ADD COLUMN IF NOT EXISTS `mat_$browser` Nullable(String) MATERIALIZED ")
    assert browser[0].endswith(" COMMENT 'property:$browser'")
    assert browser[1] == "ALTER TABLE events MATERIALIZE COLUMN `mat_$browser`"
    assert single["0003_uuid_bloom_filter"] == [
        "ALTER TABLE events ADD INDEX IF NOT EXISTS uuid_bloom uuid TYPE bloom_filter(0.001) GRANULARITY 1",
        "ALTER TABLE events MATERIALIZE INDEX uuid_bloom",
    ]
    assert single["0006_created_at_index"] == [
        "ALTER TABLE events ADD INDEX IF NOT EXISTS created_at_minmax created_at TYPE minmax GRANULARITY 1",
        "ALTER TABLE events MATERIALIZE INDEX created_at_minmax",
    ]
    assert not any("ON CLUSTER" in s or "Replicated" in s or "Distributed" in s for step in single.values() for s in step)
    assert [name for name, _ in MIGRATIONS] == list(single)


def squash(text: str) -> str:
    return " ".join(text.split())


def test_cluster_ddl_shards_events_behind_a_distributed_table():
    ddl = {name: [squash(s) for s in step] for name, step in statements("posthog").items()}
    initial = ddl["0001_initial"]
    assert all(" ON CLUSTER 'posthog' " in s for step in ddl.values() for s in step)
    sharded, distributed, persons, distinct_ids, overrides = initial
    assert sharded.startswith("CREATE TABLE IF NOT EXISTS sharded_events ON CLUSTER 'posthog' ( uuid UUID,")
    assert ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}.{table}', '{replica}') "
            "PARTITION BY toYYYYMM(timestamp) ORDER BY (team_id, event, toDate(timestamp), cityHash64(distinct_id), uuid)") in sharded
    assert distributed == ("CREATE TABLE IF NOT EXISTS events ON CLUSTER 'posthog' AS sharded_events "
                           "ENGINE = Distributed('posthog', currentDatabase(), sharded_events, cityHash64(distinct_id))")
    for table, statement in (("persons", persons), ("person_distinct_ids", distinct_ids), ("person_distinct_id_overrides", overrides)):
        # on every node (one replication path for all shards): joins stay local to each shard
        assert statement.startswith(f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER 'posthog' (")
        assert ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/noshard/{database}.{table}', "
                "'{replica}-{shard}', version)") in statement
    # materialized columns are computed on the shards and declared on the Distributed table
    add, fill, declare = ddl["0002_materialized_columns"][:3]
    assert add.startswith("ALTER TABLE sharded_events ON CLUSTER 'posthog' ADD COLUMN IF NOT EXISTS `mat_$browser` Nullable(String) MATERIALIZED ")
    assert fill == "ALTER TABLE sharded_events ON CLUSTER 'posthog' MATERIALIZE COLUMN `mat_$browser`"
    assert declare == "ALTER TABLE events ON CLUSTER 'posthog' ADD COLUMN IF NOT EXISTS `mat_$browser` Nullable(String) COMMENT 'property:$browser'"
    assert ddl["0003_uuid_bloom_filter"][0] == (
        "ALTER TABLE sharded_events ON CLUSTER 'posthog' ADD INDEX IF NOT EXISTS uuid_bloom uuid TYPE bloom_filter(0.001) GRANULARITY 1"
    )
    assert ddl["0006_created_at_index"][0] == (
        "ALTER TABLE sharded_events ON CLUSTER 'posthog' ADD INDEX IF NOT EXISTS created_at_minmax created_at TYPE minmax GRANULARITY 1"
    )


def test_materialize_statements_follow_the_cluster():
    assert len(materialize_statements("plan")) == 2
    assert [squash(s).split(" ADD COLUMN")[0] for s in materialize_statements("plan", "c1")][::2] == [
        "ALTER TABLE sharded_events ON CLUSTER 'c1'", "ALTER TABLE events ON CLUSTER 'c1'"
    ]


@pytest.mark.parametrize("name", ["a b", "x'; DROP TABLE events; --", ""])
def test_cluster_names_are_identifiers(name):
    if not name:
        assert "ON CLUSTER" not in " ".join(s for _, step in render(name) for s in step)
        return
    with pytest.raises(ValueError):
        render(name)


@pytest.mark.django_db
def test_migrate_uses_the_configured_cluster(settings, monkeypatch):
    from events.clickhouse import schema

    class Recorder:
        def __init__(self):
            self.commands = []

        def command(self, sql, **kwargs):
            self.commands.append(squash(sql))

        def query(self, sql, **kwargs):
            from events.clickhouse.client import QueryResult

            return QueryResult(["name"], ["String"], [])

        def insert(self, table, rows, column_names, **kwargs):
            self.commands.append(f"INSERT {table} {rows}")

    settings.CLICKHOUSE_CLUSTER = "prod"
    recorder = Recorder()
    assert schema.migrate(recorder) == [name for name, _ in MIGRATIONS]
    assert recorder.commands[0] == (
        "CREATE TABLE IF NOT EXISTS clickhouse_migrations ON CLUSTER 'prod' (name String, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/noshard/{database}.{table}', '{replica}-{shard}') ORDER BY name"
    )
    assert "CREATE TABLE IF NOT EXISTS events ON CLUSTER 'prod' AS sharded_events" in recorder.commands[2]


@pytest.mark.django_db
def test_migrate_clickhouse_if_configured_is_quiet_without_clickhouse():
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("migrate_clickhouse", "--if-configured", stdout=out)
    assert out.getvalue() == ""
    with pytest.raises(CommandError):
        call_command("migrate_clickhouse")
    with pytest.raises(CommandError):
        call_command("materialize_property", "plan")


@pytest.mark.django_db
def test_materialize_property_command(clickhouse):
    import uuid
    from datetime import datetime, timezone
    from io import StringIO

    from django.core.management import call_command

    from events.clickhouse.materialized import forget_columns
    from events.clickhouse.mirror import insert_events

    when = datetime(2024, 1, 1, tzinfo=timezone.utc)
    insert_events([(uuid.uuid4(), 1, "e", "d", '{"plan": "pro", "seats": 3}', when, None, "", when)], clickhouse)
    out = StringIO()
    call_command("materialize_property", "plan", "seats", stdout=out)
    assert out.getvalue().splitlines() == ["plan: materialized as column `mat_plan`", "seats: materialized as column `mat_seats`"]
    # stored events are filled too, with the engine's property text
    assert clickhouse.query("SELECT mat_plan, mat_seats FROM events").rows == [("pro", "3")]
    out = StringIO()
    call_command("materialize_property", "plan", stdout=out)
    assert out.getvalue() == "plan: already materialized as column `mat_plan`\n"
    # other tests of this process share the table: leave only the default columns
    clickhouse.command("ALTER TABLE events DROP COLUMN mat_plan, DROP COLUMN mat_seats")
    forget_columns()
