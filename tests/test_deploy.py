"""The deployment files: compose (one and three members), the image, Prometheus and Grafana.

No container runs here (no Docker engine); what can be checked without one is: the files
parse and say what the README says, and `docker compose config` accepts them where the tool
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

import api.metrics
import broadcaster.metrics
import watcher.metrics
from tests.processes import ROOT

BASE = ROOT / "docker-compose.yml"
REPLICA = ROOT / "docker-compose.replica.yml"
SERVICES = ("api", "watcher", "broadcaster")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_services_check_readyz_and_take_secrets_from_the_environment():
    compose = load(BASE)
    for name in SERVICES:
        test = " ".join(compose["services"][name]["healthcheck"]["test"])
        assert "/readyz" in test, name
    text = BASE.read_text()
    assert "change-me" not in text  # no default publish token in a production file
    for name in ("watcher", "broadcaster"):
        token = compose["services"][name]["environment"]["DESKS_PUBLISH_TOKEN"]
        assert token.startswith("${DESKS_PUBLISH_TOKEN:?"), name  # compose refuses to start
    for name in ("api", "broadcaster"):
        assert compose["services"][name]["environment"]["DESKS_JWT_SECRET"] == (
            "${DESKS_JWT_SECRET:-}"
        )
    assert "--health-host" in compose["services"]["watcher"]["command"]  # scrapable


def test_the_override_makes_a_three_member_set_everyone_uses():
    override = load(REPLICA)
    members = ["mongo", "mongo2", "mongo3"]
    assert all(name in load(BASE)["services"] or name in override["services"] for name in members)
    listed = override["services"]["mongo-init"]["environment"]["MONGO_MEMBERS"].split(",")
    assert listed == [f"{name}:27017" for name in members]
    for name in SERVICES:
        uri = override["services"][name]["environment"]["MONGODB_URI"]
        assert uri == "mongodb://mongo:27017,mongo2:27017,mongo3:27017/?replicaSet=rs0", name


def test_prometheus_scrapes_every_service_on_its_port():
    scrape = load(ROOT / "monitoring" / "prometheus.yml")
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]
    }
    assert targets == {
        "desks-api": ["api:8000"],
        "desks-watcher": ["watcher:8767"],
        "desks-broadcaster": ["broadcaster:8765"],
    }


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


@pytest.mark.parametrize("files", [[BASE], [BASE, REPLICA]], ids=["one member", "three"])
def test_docker_compose_accepts_the_files(files, tmp_path):
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor docker-compose is installed")
    arguments = [part for path in files for part in ("-f", str(path))]
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "DESKS_PUBLISH_TOKEN": "t",
        "HOME": str(tmp_path),
    }
    result = subprocess.run(
        [*command, *arguments, "--profile", "monitoring", "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # Without the publish token compose refuses to go on, naming it.
    env.pop("DESKS_PUBLISH_TOKEN")
    refused = subprocess.run(
        [*command, *arguments, "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert refused.returncode != 0 and "DESKS_PUBLISH_TOKEN" in refused.stderr
