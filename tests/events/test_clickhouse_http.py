"""The HTTP transport against the chDB-backed endpoint: URLs, migrations over HTTP, outages."""
import pytest
from django.core.management import call_command

from events.clickhouse import ClickHouseError, get_client
from events.clickhouse.http import ClickHouseUnavailable, HttpClient
from events.clickhouse.schema import MIGRATIONS, migrate

from ..faults.test_outages import DATABASE_UNAVAILABLE, free_port

pytestmark = pytest.mark.django_db


def test_the_url_gives_server_credentials_and_database():
    client = HttpClient("https://us%40r:p%3Ass@ch.example:9443/analytics?connect_timeout=3&ignored=1")
    assert client.database == "analytics"
    assert {"interface": "https", "host": "ch.example", "port": 9443, "username": "us@r", "password": "p:ss",
            "database": "analytics", "connect_timeout": 3}.items() <= client._options.items()
    assert "ignored" not in client._options
    defaults = HttpClient("http://ch:8123")._options
    assert (defaults["port"], defaults["username"], defaults["password"], defaults["database"]) == (8123, "default", "", "default")
    assert HttpClient("https://ch")._options["port"] == 8443
    for bad in ("ch:8123", "tcp://ch:9000/db", "http:///db"):
        with pytest.raises(ValueError):
            HttpClient(bad)


def test_migrations_apply_over_http_into_the_urls_database(clickhouse_http, clickhouse_http_endpoint):
    assert migrate(clickhouse_http) == []  # the fixture migrated `default`
    clickhouse_http.command("DROP DATABASE IF EXISTS fresh")
    clickhouse_http.command("CREATE DATABASE fresh")
    fresh = HttpClient(clickhouse_http_endpoint.url.rsplit("/", 1)[0] + "/fresh")
    assert migrate(fresh) == [name for name, _ in MIGRATIONS]
    assert migrate(fresh) == []
    tables = clickhouse_http.query("SELECT name FROM system.tables WHERE database = 'fresh' ORDER BY name").rows
    assert {"events", "persons", "person_distinct_ids", "person_distinct_id_overrides"} <= {row[0] for row in tables}
    assert fresh.query("SELECT count() AS c FROM events").rows == [(0,)]
    clickhouse_http.command("DROP DATABASE fresh")


def test_migrate_clickhouse_command_over_http(clickhouse_http, capsys):
    call_command("migrate_clickhouse")
    assert "No ClickHouse migrations to apply." in capsys.readouterr().out


def test_an_unknown_database_is_a_clickhouse_error(clickhouse_http_endpoint):
    client = HttpClient(clickhouse_http_endpoint.url.rsplit("/", 1)[0] + "/no_such_database")
    with pytest.raises(ClickHouseError) as raised:
        client.query("SELECT 1")
    assert raised.value.code == 81


def test_a_server_that_cannot_be_reached_is_unavailable_not_a_statement_error():
    client = HttpClient(f"http://127.0.0.1:{free_port()}/default?connect_timeout=2")
    with pytest.raises(ClickHouseUnavailable):
        client.query("SELECT 1")
    with pytest.raises(ClickHouseUnavailable):  # not remembered as connected: each use retries
        client.command("SELECT 1")
    assert not isinstance(ClickHouseUnavailable("x"), ClickHouseError)  # callers' statement-error paths skip it


@pytest.fixture
def own_endpoint(tmp_path, settings):
    """An endpoint of this test's own, so it can be stopped and started again."""
    from events.clickhouse import reset_client

    from ..clickhouse_http import EndpointProcess

    endpoint = EndpointProcess(tmp_path / "clickhouse").start()
    settings.EVENTS_ENGINE = "clickhouse"
    settings.CLICKHOUSE_URL = endpoint.url
    reset_client()
    yield endpoint
    endpoint.stop()
    reset_client()


def _reads_clickhouse(monkeypatch):
    # A query runner that reads ClickHouse (the ClickHouse engine's runners do; until they are on
    # this branch a HogQL runner stands in, so the request path through the API is the real one).
    from queries.runners.hogql_query import HogQLQueryRunner

    def calculate(runner):
        (count,) = get_client().query("SELECT count() AS c FROM numbers(3)").rows[0]
        return {"results": [[count]], "columns": ["c"], "types": [["c", "UInt64"]]}

    monkeypatch.setattr(HogQLQueryRunner, "calculate", calculate)


def test_clickhouse_going_away_answers_503_with_retry_after_then_recovers(team, client, own_endpoint, monkeypatch):
    _reads_clickhouse(monkeypatch)
    query = {"query": {"kind": "HogQLQuery", "query": "select 1"}, "refresh": "force_blocking"}
    url = f"/api/projects/{team.id}/query/"
    assert client.post(url, query, format="json").json()["results"] == [[3]]

    own_endpoint.stop()
    response = client.post(url, query, format="json")
    assert response.status_code == 503
    assert response.json() == DATABASE_UNAVAILABLE
    assert response["Retry-After"] == "5"
    assert client.get("/_readyz").status_code == 503

    own_endpoint.start()  # same port and data: the pooled client reconnects
    assert client.post(url, query, format="json").json()["results"] == [[3]]
    assert client.get("/_readyz").json()["checks"]["clickhouse"] == "ok"


def test_clickhouse_down_at_start_up_is_503_not_500(team, client, settings, monkeypatch):
    from events.clickhouse import reset_client

    settings.EVENTS_ENGINE = "clickhouse"
    settings.CLICKHOUSE_URL = f"http://127.0.0.1:{free_port()}/default"
    reset_client()
    _reads_clickhouse(monkeypatch)
    try:
        response = client.post(f"/api/projects/{team.id}/query/", {"query": {"kind": "HogQLQuery", "query": "select 1"}},
                                format="json")
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        ready = client.get("/_readyz")
        assert (ready.status_code, ready.json()["checks"]["clickhouse"]) == (503, "unavailable")
    finally:
        reset_client()


def test_a_statement_error_is_not_an_outage(team, client, clickhouse_http):
    with pytest.raises(ClickHouseError) as raised:
        clickhouse_http.query("SELECT no_such_function()")
    assert raised.value.code == 46
    assert client.get("/_readyz").json()["checks"]["clickhouse"] == "ok"


@pytest.mark.parametrize(("raised", "expected", "code"), [
    (("Received ClickHouse exception, code: 46, server response: Code: 46. DB::Exception: x. (UNKNOWN_FUNCTION)", 46),
     ClickHouseError, 46),
    (("Received ClickHouse exception, code: 279, server response: Code: 279. DB::Exception: All connection tries "
      "failed. (ALL_CONNECTION_TRIES_FAILED)", 279), ClickHouseUnavailable, 279),
    (("Received ClickHouse exception, code: 242, server response: Code: 242. DB::Exception: Table is in readonly "
      "mode. (TABLE_IS_READ_ONLY)", 242), ClickHouseUnavailable, 242),
    (("HTTP driver received HTTP status 503, server response: no healthy upstream", None), ClickHouseUnavailable, None),
    (("HTTP driver received HTTP status 400, server response: bad", None), ClickHouseError, None),
])
def test_server_answers_are_statement_errors_or_outages(raised, expected, code):
    from clickhouse_connect.driver.exceptions import DatabaseError

    from events.clickhouse.http import _call

    message, error_code = raised

    def fail():
        raise DatabaseError(message, code=error_code)

    with pytest.raises(expected) as caught:
        _call(fail)
    assert type(caught.value) is expected and caught.value.code == code
    assert not str(caught.value).startswith(("Received", "HTTP driver"))


def test_the_read_timeout_outlasts_the_longest_query(settings):
    settings.QUERY_ASYNC_TIMEOUT_SECONDS = 900
    assert HttpClient("http://ch:8123")._options["send_receive_timeout"] == 960
    assert HttpClient("http://ch:8123/?send_receive_timeout=30")._options["send_receive_timeout"] == 30
