"""docker-compose.yml and the ClickHouse config files it mounts, checked without Docker.

Docker is not available here, so the file is parsed, interpolated as Compose does (the `${VAR}`,
`:-`, `:?` and `:+` forms it uses) for the one-server and the cluster set-ups, and checked for
what `docker compose config` and a start would need: every mounted file exists and is
well-formed XML, every host the configs and the app name is a service of the active profiles,
each service the app waits for has a health check.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent
VARIABLE = re.compile(r"\$\{(\w+)(?:(:[-?+])([^}]*))?\}")

SINGLE = {"SECRET_KEY": "s"}
CLUSTER = {"SECRET_KEY": "s", "CLICKHOUSE_CLUSTER": "insights"}


def interpolate(value, env):
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match):
        name, operator, argument = match.groups()
        current = env.get(name, "")
        if operator == ":-":
            return current or argument
        if operator == ":+":
            return argument if current else ""
        if operator == ":?" and not current:
            raise ValueError(f"{name}: {argument}")
        return current

    return VARIABLE.sub(substitute, value)


def project(env, profiles=()):
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    config = interpolate(raw, env)
    services = {name: service for name, service in config["services"].items()
                if not service.get("profiles") or set(service["profiles"]) & set(profiles)}
    return config, services


def mounts(service):
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        yield source, target


@pytest.mark.parametrize(("env", "profiles"), [(SINGLE, ()), (CLUSTER, ("cluster",))], ids=["single", "cluster"])
def test_compose_config_is_consistent(env, profiles):
    config, services = project(env, profiles)
    assert {"postgres", "redis", "clickhouse", "web", "worker"} <= set(services)
    for name in ("web", "worker"):
        app = services[name]
        assert app["environment"]["CLICKHOUSE_CLUSTER"] == env.get("CLICKHOUSE_CLUSTER", "")
        url = urlsplit(app["environment"]["CLICKHOUSE_URL"])
        assert (url.scheme, url.hostname, url.port, url.path) == ("http", "clickhouse", 8123, "/insights")
        for dependency, condition in app["depends_on"].items():
            if condition.get("required", True) is False and dependency not in services:
                continue  # an optional dependency of another profile
            assert dependency in services and "healthcheck" in services[dependency]
            assert condition["condition"] == "service_healthy"
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services or condition.get("required") is False, (name, dependency)
        for source, target in mounts(service):
            if source.startswith("./"):
                assert (ROOT / source).is_file(), source
                ElementTree.parse(ROOT / source)
        for volume, _ in mounts(service):
            if not volume.startswith(("./", "/")):
                assert volume in config["volumes"], volume
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert not services["clickhouse"]["image"].endswith(":latest")


def _loaded_configs(service):
    """The mounted files ClickHouse merges: config.d entries ending in .xml."""
    return {Path(target).name: ROOT / source for source, target in mounts(service)
            if source.startswith("./") and target.startswith("/etc/clickhouse-server/config.d/") and target.endswith(".xml")}


def test_one_server_loads_no_cluster_config():
    _, services = project(SINGLE)
    assert _loaded_configs(services["clickhouse"]) == {}
    assert not {"clickhouse-shard-2", "clickhouse-keeper"} & set(services)


def test_cluster_profile_has_two_shards_and_keeper():
    _, services = project(CLUSTER, ("cluster",))
    shards = {}
    for name in ("clickhouse", "clickhouse-shard-2"):
        configs = _loaded_configs(services[name])
        assert set(configs) == {"cluster.xml", "macros.xml"}
        cluster = ElementTree.parse(configs["cluster.xml"]).getroot()
        hosts = [replica.findtext("host") for replica in cluster.iter("replica")]
        assert cluster.find("remote_servers/insights") is not None  # the name CLICKHOUSE_CLUSTER gives
        assert hosts == ["clickhouse", "clickhouse-shard-2"]
        assert all(host in services and services[host]["hostname"] == host for host in hosts)
        keeper = cluster.find("zookeeper/node")
        assert keeper.findtext("host") in services and keeper.findtext("port") == "9181"
        macros = ElementTree.parse(configs["macros.xml"]).getroot().find("macros")
        assert macros.findtext("replica") == services[name]["hostname"]
        shards[macros.findtext("shard")] = name
    assert shards == {"1": "clickhouse", "2": "clickhouse-shard-2"}

    keeper = services["clickhouse-keeper"]
    (keeper_config,) = [ROOT / source for source, target in mounts(keeper) if source.startswith("./")]
    server = ElementTree.parse(keeper_config).getroot().find("keeper_server")
    assert server.findtext("tcp_port") == "9181"
    assert server.find("raft_configuration/server/hostname").text == keeper["hostname"]
    assert "healthcheck" in keeper


def test_dockerfile_installs_the_clickhouse_client():
    dockerfile = (ROOT / "Dockerfile").read_text()
    extras = re.search(r"ARG EXTRAS=(\S+)", dockerfile).group(1)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(rf"^{re.escape(extras)} = \[\s*\"clickhouse-connect==", pyproject, re.MULTILINE)


def _compose_plugin() -> bool:
    """Whether `docker compose` (the Compose v2 plugin) is installed; no daemon is needed for `config`.
    (The legacy `docker-compose` 1.x does not read the current Compose spec: no `required:` in
    depends_on, no `${VAR:+...}`; it is not used.)"""
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_plugin(), reason="the docker compose plugin is not installed")
@pytest.mark.parametrize(("env", "profiles"), [(SINGLE, ()), (CLUSTER, ("cluster",))], ids=["one-server", "cluster"])
def test_docker_compose_config_validates(env, profiles):
    command = ["docker", "compose", "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml")]
    for profile in profiles:
        command += ["--profile", profile]
    variables = {key: value for key, value in os.environ.items() if key not in ("SECRET_KEY", "CLICKHOUSE_CLUSTER")}
    result = subprocess.run(command + ["config", "--quiet"], capture_output=True, text=True, env={**variables, **env})
    assert result.returncode == 0, result.stderr
