"""The ClickHouse client and schema on chDB: migrations, literals, inserts, errors."""
import uuid
from datetime import datetime, timezone

import pytest

from events.clickhouse import ClickHouseError
from events.clickhouse.client import quote
from events.clickhouse.schema import MIGRATIONS, migrate

pytestmark = pytest.mark.django_db


def test_migrations_apply_once(clickhouse):
    assert migrate(clickhouse) == []
    names = {row[0] for row in clickhouse.query("SELECT name FROM clickhouse_migrations").rows}
    assert names == {name for name, _ in MIGRATIONS}


def test_insert_and_read_back_with_types(clickhouse):
    when = datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    event_uuid = uuid.uuid4()
    clickhouse.insert(
        "events",
        [(event_uuid, 7, "it's", "d\\1", '{"a": "x"}', when, None, "s", when)],
        ["uuid", "team_id", "event", "distinct_id", "properties", "timestamp", "person_id", "session_id", "created_at"],
    )
    rows = clickhouse.query("SELECT uuid, team_id, event, distinct_id, timestamp, person_id FROM events").rows
    assert rows == [(str(event_uuid), 7, "it's", "d\\1", when, None)]


@pytest.mark.parametrize("value", ["plain", "it's", "back\\slash", "\\'; DROP TABLE events; --", "é\n\t"])
def test_quoted_literals_round_trip(clickhouse, value):
    assert clickhouse.query(f"SELECT {quote(value)}").rows == [(value,)]
    assert clickhouse.query("SELECT {v:String}", parameters={"v": value}).rows == [(value,)]


def test_errors_carry_clickhouse_codes(clickhouse):
    with pytest.raises(ClickHouseError) as raised:
        clickhouse.query("SELECT no_such_function()")
    assert raised.value.code == 46


def test_default_materialized_columns_hold_the_property_text(clickhouse):
    from events.clickhouse.materialized import materialized_columns

    columns = materialized_columns(clickhouse)
    assert columns["$browser"] == "mat_$browser"
    when = datetime(2020, 1, 2, tzinfo=timezone.utc)
    values = ['{"$browser": "Chrome"}', '{"$browser": 3.50}', '{"$browser": true}', '{"$browser": null}', "{}",
              '{"$browser": "say \\"hi\\""}']
    clickhouse.insert("events", [(uuid.uuid4(), 1, "e", "d", p, when, None, "", when) for p in values],
                      ["uuid", "team_id", "event", "distinct_id", "properties", "timestamp", "person_id", "session_id", "created_at"])
    rows = clickhouse.query("SELECT properties, `mat_$browser` FROM events ORDER BY properties").rows
    assert dict(rows) == {values[0]: "Chrome", values[1]: "3.5", values[2]: "true", values[3]: None, values[4]: None,
                          values[5]: 'say "hi"'}
