"""One conformance suite for both ClickHouse transports: chDB in-process and a server over HTTP.

Every test runs on `ChdbClient` and on `HttpClient` (against the chDB-backed HTTP endpoint in
tests/clickhouse_http.py) and asserts the same Python values, errors and settings behaviour, so the
engine can use either without knowing which.
"""
import threading
import time
import uuid
from datetime import date, datetime, timezone

import pytest

from events.clickhouse import ClickHouseError
from events.clickhouse.client import QUERY_WAS_CANCELLED, TIMEOUT_EXCEEDED, quote

pytestmark = pytest.mark.django_db

EVENT_COLUMNS = ["uuid", "team_id", "event", "distinct_id", "properties", "timestamp", "person_id", "session_id", "created_at"]


@pytest.fixture(params=["chdb", "http"])
def client(request):
    return request.getfixturevalue("clickhouse" if request.param == "chdb" else "clickhouse_http")


def test_values_are_the_python_values_of_the_django_engines(client):
    result = client.query(
        """
        SELECT toInt64(-9223372036854775808) AS i64, toUInt64(18446744073709551615) AS u64, toInt8(-1) AS i8,
               toFloat64(1.25) AS f, toFloat64(1) / 0 AS inf, toFloat64(0) / 0 AS nan, toDecimal64(2.5, 2) AS dec,
               true AS b, toDate('2020-02-29') AS d,
               toDateTime64('2020-01-02 03:04:05.678901', 6, 'UTC') AS dt64, toDateTime('2020-01-02 03:04:05', 'UTC') AS dt,
               CAST(NULL AS Nullable(String)) AS n, toLowCardinality('lc') AS lc,
               toUUID('6b2f4a4e-0d1a-4c4f-9a43-5d2b7c8e9f00') AS u, 'é\\t"\\'' AS s,
               [1, 2] AS arr, ['a', NULL] AS arr_n, (1, 'x') AS tup, map('k', 1) AS m, [] AS empty
        """
    )
    assert result.columns == ["i64", "u64", "i8", "f", "inf", "nan", "dec", "b", "d", "dt64", "dt", "n", "lc", "u", "s",
                              "arr", "arr_n", "tup", "m", "empty"]
    assert result.types[:3] == ["Int64", "UInt64", "Int8"]
    (row,) = result.rows
    assert row[:6] == (-9223372036854775808, 18446744073709551615, -1, 1.25, float("inf"), row[5])
    assert row[5] != row[5]  # nan
    assert row[6:] == (
        2.5, True, date(2020, 2, 29),
        datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc), datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        None, "lc", "6b2f4a4e-0d1a-4c4f-9a43-5d2b7c8e9f00", 'é\t"\'',
        [1, 2], ["a", None], (1, "x"), {"k": 1}, [],
    )
    assert type(row[0]) is int and type(row[3]) is float and type(row[6]) is float


def test_empty_results_keep_their_columns(client):
    result = client.query("SELECT number AS n FROM numbers(3) WHERE n > 5")
    assert (result.columns, result.types, result.rows) == (["n"], ["UInt64"], [])


@pytest.mark.parametrize("value", ["plain", "it's", "back\\slash", "\\'; DROP TABLE events; --", "é\n\t\r`x`", ""])
def test_strings_round_trip_as_literals_and_parameters(client, value):
    assert client.query(f"SELECT {quote(value)} AS v").rows == [(value,)]
    assert client.query("SELECT {v:String} AS v", parameters={"v": value}).rows == [(value,)]


def test_parameters_of_other_types(client):
    when = datetime(2021, 3, 4, 5, 6, 7, 890123, tzinfo=timezone.utc)
    result = client.query(
        "SELECT {i:Int64} AS i, {f:Float64} AS f, {t:DateTime64(6, 'UTC')} AS t, {u:UUID} AS u",
        parameters={"i": -42, "f": 0.5, "t": when, "u": uuid.UUID("6b2f4a4e-0d1a-4c4f-9a43-5d2b7c8e9f00")},
    )
    assert result.rows == [(-42, 0.5, when, "6b2f4a4e-0d1a-4c4f-9a43-5d2b7c8e9f00")]


def test_insert_and_read_back_events(client):
    when = datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    first, second = uuid.uuid4(), uuid.uuid4()
    client.insert("events", [
        (first, 7, "it's", "d\\1", '{"a": "x"}', when, None, "s", when),
        (second, 7, "e", "é", "{}", when, 12, "", when),
    ], EVENT_COLUMNS)
    rows = client.query("SELECT uuid, team_id, event, distinct_id, properties, timestamp, person_id FROM events "
                        "ORDER BY event").rows
    assert sorted(rows) == sorted([(str(first), 7, "it's", "d\\1", '{"a": "x"}', when, None),
                                   (str(second), 7, "e", "é", "{}", when, 12)])
    client.insert("events", [], EVENT_COLUMNS)  # nothing to insert: no statement


def test_settings_apply_to_one_query(client):
    assert client.query("SELECT getSetting('max_result_rows') AS v", settings={"max_result_rows": 7}).rows == [(7,)]
    assert client.query("SELECT getSetting('max_result_rows') AS v").rows == [(0,)]


def test_commands_take_settings(client):
    client.command("CREATE TABLE IF NOT EXISTS transport_probe (n UInt64) ENGINE = Memory", settings={"max_threads": 1})
    client.command("INSERT INTO transport_probe SELECT number FROM numbers(3)")
    assert client.query("SELECT count() AS c FROM transport_probe").rows == [(3,)]
    client.command("DROP TABLE transport_probe")


@pytest.mark.parametrize(("sql", "code"), [
    ("SELECT no_such_function()", 46),
    ("SELECT * FROM no_such_table", 60),
    ("SELEC 1", 62),
    ("SELECT toInt64('x')", 6),
])
def test_errors_carry_clickhouse_codes_and_messages(client, sql, code):
    with pytest.raises(ClickHouseError) as raised:
        client.query(sql)
    assert raised.value.code == code
    assert str(raised.value).startswith(f"Code: {code}. DB::Exception: ")


def test_max_execution_time_raises_timeout(client):
    with pytest.raises(ClickHouseError) as raised:
        client.query("SELECT sleepEachRow(0.05) FROM numbers(100) SETTINGS max_block_size = 1",
                     settings={"max_execution_time": 0.3})
    assert raised.value.code == TIMEOUT_EXCEEDED


def test_kill_query_by_its_id(client):
    outcome = {}

    def slow():
        try:
            client.query("SELECT sleepEachRow(0.1) FROM numbers(300) SETTINGS max_block_size = 1", query_id="slow-1")
        except ClickHouseError as error:
            outcome["code"] = error.code

    worker = threading.Thread(target=slow)
    worker.start()
    for _ in range(100):  # until it runs (a server knows it by its query id, chDB by its log_comment)
        running = client.query("SELECT count() AS c FROM system.processes "
                               "WHERE query_id = 'slow-1' OR Settings['log_comment'] = 'slow-1'").rows
        if running == [(1,)]:
            break
        threading.Event().wait(0.05)
    client.kill_query("slow-1")
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert outcome == {"code": QUERY_WAS_CANCELLED}


def test_statements_run_concurrently(client):
    # Threads of one process share the client (gunicorn threads, async query threads).
    started = time.monotonic()
    threads = [threading.Thread(target=client.query, args=("SELECT sleepEachRow(0.1) FROM numbers(5) "
                                                             "SETTINGS max_block_size = 1",)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started < 1.2  # one at a time would take 1.5 s
