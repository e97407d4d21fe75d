"""The deployment files: compose (one and three members), the image, Prometheus and Grafana.

No container runs here (no Docker engine); what can be checked without one is: the files
parse and say what docs/operations.md says, and `docker compose config` accepts them where the tool
exists.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY
from pymongo import uri_parser

import api.metrics
import broadcaster.metrics
import watcher.metrics
from tests.processes import ROOT

BASE = ROOT / "docker-compose.yml"
REPLICA = ROOT / "docker-compose.replica.yml"
MONITORING = ROOT / "docker-compose.monitoring.yml"
SERVICES = ("api", "watcher", "broadcaster")
SECRETS = ("MONGO_ADMIN_PASSWORD", "DESKS_MONGO_PASSWORD", "DESKS_MONGO_READER_PASSWORD")
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?:(:\?|:-)([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Substitute ${VAR}, ${VAR:-default} and ${VAR:?message} as compose does (KeyError
    naming the variable when a required one is unset or empty)."""

    def value(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if env.get(name):
            return env[name]
        if kind == ":?":
            raise KeyError(name)
        return rest if kind == ":-" else ""

    return VARIABLE.sub(value, text)


def example_env() -> dict[str, str]:
    """Return the variables .env.example sets (its commented ones left out)."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {name: value for name, value in pairs}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_services_check_readyz_and_take_secrets_from_the_environment():
    compose = load(BASE)
    for name in SERVICES:
        test = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert "/readyz" in test, name
    for name in ("api", "broadcaster"):
        assert compose["services"][name]["environment"]["DESKS_JWT_SECRET"] == (
            "${DESKS_JWT_SECRET:-}"
        )
    assert "--health-host" in compose["services"]["watcher"]["command"]  # scrapable
    # Broadcasters follow the log in the store: nothing lists them, nothing pushes to them.
    assert "DESKS_PUBLISH_TOKEN" not in BASE.read_text()
    assert "DESKS_BROADCASTER_URL" not in compose["services"]["watcher"]["environment"]
    assert compose["services"]["broadcaster"]["environment"]["MONGODB_URI"]


def test_the_override_makes_a_three_member_set_everyone_uses():
    override = load(REPLICA)
    members = ["mongo", "mongo2", "mongo3"]
    assert all(name in load(BASE)["services"] or name in override["services"] for name in members)
    listed = override["services"]["mongo-init"]["environment"]["MONGO_MEMBERS"].split(",")
    assert listed == [f"{name}:27017" for name in members]
    for name in SERVICES:
        uri = override["services"][name]["environment"]["MONGODB_URI"]
        assert "@mongo:27017,mongo2:27017,mongo3:27017/?replicaSet=rs0&authSource=admin" in uri
    for name in ("mongo2", "mongo3"):  # every member authenticates the others by the key
        member = override["services"][name]
        assert "--keyFile" in member["command"] and "mongo-keyfile:/keyfile:ro" in member["volumes"]
        assert "mongo-keyfile" in member["depends_on"] and "ports" not in member
        assert override["services"]["mongo-init"]["depends_on"][name] == {
            "condition": "service_healthy"
        }


def test_mongodb_has_access_control_its_own_users_and_no_published_port():
    compose = load(BASE)["services"]
    assert "--keyFile" in compose["mongo"]["command"]
    assert "mongo-keyfile:/keyfile:ro" in compose["mongo"]["volumes"]
    assert "ports" not in compose["mongo"]  # a commented override for debugging, no more
    for name in SERVICES:  # each connects as a user mongo-init makes
        assert "mongo-init" in compose[name]["depends_on"], name
    assert "mongo-keyfile" in compose["mongo"]["depends_on"]
    init = compose["mongo-init"]
    assert init["network_mode"] == "service:mongo"  # the localhost exception, for the first user
    assert init["environment"]["MONGO_HOST"].startswith("localhost:")
    for name in SECRETS:  # compose refuses to start without them
        assert init["environment"][name].startswith(f"${{{name}:?"), name
    secrets = {name: "x" * 40 for name in SECRETS}
    text = interpolate(BASE.read_text(), {**example_env(), **secrets})
    resolved = yaml.safe_load(text)["services"]
    users = {
        name: uri_parser.parse_uri(resolved[name]["environment"]["MONGODB_URI"])
        for name in SERVICES
    }
    for parsed in users.values():
        assert parsed["options"]["authSource"] == "admin" and parsed["password"] == "x" * 40
        assert parsed["options"]["replicaSet"] == "rs0"
    # The API and the watcher write; broadcasters only read the log: a user of their own.
    assert users["api"]["username"] == users["watcher"]["username"] == "desks"
    assert users["broadcaster"]["username"] == "desks-reader"
    for missing in SECRETS:
        with pytest.raises(KeyError, match=missing):
            interpolate(BASE.read_text(), {**example_env(), **secrets, missing: ""})


def test_every_secret_compose_requires_is_named_in_env_example_and_not_given_there():
    example = (ROOT / ".env.example").read_text()
    required = {
        name
        for path in (BASE, REPLICA, MONITORING)
        for name, kind, _ in VARIABLE.findall(path.read_text())
        if kind == ":?"
    }
    assert required == {*SECRETS, "GRAFANA_ADMIN_PASSWORD"}
    for name in required:
        assert f"# {name}=\n" in example, name  # listed, commented: no default secret
    assert interpolate(MONITORING.read_text(), {"GRAFANA_ADMIN_PASSWORD": "g" * 32})
    with pytest.raises(KeyError, match="GRAFANA_ADMIN_PASSWORD"):
        interpolate(MONITORING.read_text(), {})
    # Monitoring is a file of its own: the stack starts without Grafana's password.
    assert "GRAFANA" not in BASE.read_text()


def test_prometheus_scrapes_every_replica_of_every_service_on_its_port():
    scrape = load(ROOT / "monitoring" / "prometheus.yml")
    found = {
        job["job_name"]: [(sd["names"], sd["type"], sd["port"]) for sd in job["dns_sd_configs"]]
        for job in scrape["scrape_configs"]
    }
    assert found == {
        "desks-api": [(["api"], "A", 8000)],
        "desks-watcher": [(["watcher"], "A", 8767)],
        "desks-broadcaster": [(["broadcaster"], "A", 8765)],
    }


def test_the_balancer_is_the_only_way_in_and_checks_every_replica():
    compose = load(BASE)["services"]
    # Replicas publish no port (--scale would collide on it): the balancer publishes both.
    assert "ports" not in compose["api"] and "ports" not in compose["broadcaster"]
    assert compose["lb"]["ports"] == ["8000:8000", "8765:8765"]
    assert compose["lb"]["image"].startswith("haproxy:")
    config = (ROOT / "loadbalancer" / "haproxy.cfg").read_text()
    assert "server-template api 10 api:8000 " in config
    assert "server-template broadcaster 10 broadcaster:8765 " in config
    assert config.count("http-check send meth GET uri /readyz") == 2
    assert "timeout tunnel" in config  # idle WebSockets outlive the HTTP timeouts
    # Every client reaches a broadcaster with the balancer's address: it caps addresses itself.
    assert "sc0_conn_cur gt" in config
    per_address = compose["broadcaster"]["environment"]["DESKS_MAX_CONNECTIONS_PER_ADDRESS"]
    assert int(per_address) >= 10_000
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if Path(haproxy).exists():
        checked = subprocess.run(
            [haproxy, "-c", "-f", str(ROOT / "loadbalancer" / "haproxy.cfg")],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert checked.returncode == 0, checked.stderr


def test_every_dashboard_query_names_a_metric_the_services_export():
    assert api.metrics and watcher.metrics and broadcaster.metrics  # registered on import
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    exported = {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in ["", *suffixes.get(family.type, [])]
    }
    dashboard = json.loads((ROOT / "monitoring/grafana/dashboards/desks.json").read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bdesks_[a-z_]+", target["expr"])
    }
    assert len(queried) >= 12
    assert queried <= exported, queried - exported


def test_the_image_installs_this_package_with_every_module():
    dockerfile = (ROOT / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in packages:
        assert f"COPY {package.rstrip('*')} ./{package.rstrip('*')}" in dockerfile, package
    assert "COPY pyproject.toml" in dockerfile
    assert re.search(r"pip install [^\n]*\s\.(\s|$)", dockerfile)  # this pyproject, not PyPI's
    assert "ENV DESKS_LOG_FORMAT=json" in dockerfile


def compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


@pytest.mark.parametrize(
    "files",
    [[BASE], [BASE, REPLICA], [BASE, MONITORING]],
    ids=["one member", "three", "monitoring"],
)
def test_docker_compose_accepts_the_files(files, tmp_path):
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    arguments = [part for path in files for part in ("-f", str(path))]
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "HOME": str(tmp_path),
        **{name: "x" * 40 for name in (*SECRETS, "GRAFANA_ADMIN_PASSWORD")},
    }
    result = subprocess.run(
        [*command, *arguments, "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
